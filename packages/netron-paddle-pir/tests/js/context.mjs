// A stand-in for Netron's view.Context over files on disk, for reader tests in Node.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as url from 'node:url';

export const WEB = path.resolve(path.dirname(url.fileURLToPath(import.meta.url)), '../../src/netron_paddle_pir/web');

export class Stream {
    constructor(buffer) {
        this._buffer = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
        this.position = 0;
        this.length = this._buffer.length;
    }
    seek(position) {
        this.position = position;
    }
    peek(length) {
        const end = length === undefined ? this.length : Math.min(this.length, this.position + length);
        return this._buffer.subarray(this.position, end);
    }
    read(length) {
        const data = this.peek(length);
        this.position += data.length;
        return data;
    }
}

export class Context {
    // files: optional Map name -> Buffer overriding what is on disk (used by the fuzz test).
    constructor(file, files = new Map()) {
        this._dir = path.dirname(file);
        this.identifier = path.basename(file);
        this._files = files;
        this.stream = new Stream(this._read(this.identifier));
        this.fetched = [];
    }
    _read(name) {
        if (this._files.has(name)) {
            return this._files.get(name);
        }
        return fs.readFileSync(path.join(this._dir, name));
    }
    async peek(type) {
        if (type !== 'json') {
            return undefined;
        }
        if (this._json === undefined) {
            try {
                this._json = JSON.parse(new TextDecoder().decode(this.stream.peek()));
            } catch {
                this._json = null;
            }
        }
        return this._json;
    }
    set(type, value) {
        this.type = type;
        this.value = value;
        return type;
    }
    async fetch(name) {
        this.fetched.push(name);
        let buffer = null;
        try {
            buffer = this._read(name);
        } catch {
            throw new Error(`File not found '${name}'.`);
        }
        return { identifier: name, stream: new Stream(buffer) };
    }
    async asset(name) {
        return fs.readFileSync(path.join(WEB, name), 'utf-8');
    }
    async require(id) {
        return import(path.join(WEB, `${id}.js`));
    }
}

export const open = async (file, files) => {
    const reader = await import(path.join(WEB, 'paddle-pir.js'));
    const context = new Context(file, files);
    const factory = new reader.ModelFactory();
    const type = await factory.match(context);
    if (!type) {
        return { context, model: null };
    }
    const model = await factory.open(context);
    // The weights are read after open() returns (before that, tensors say peek() === false):
    // wait for them, so that callers see what Netron shows once the graph is drawn.
    await context.value.weights;
    return { context, model };
};

// The op nodes of a graph in program order: module nodes (whose type is a graph) replaced by
// the nodes inside them. Regions of if/while stay inside their node.
export const leaves = (graph) => graph.nodes.flatMap((node) => Array.isArray(node.type.nodes) ? leaves(node.type) : [node]);

// Op nodes including those of regions, as Netron would draw them fully expanded.
export const countNodes = (graph) => leaves(graph).reduce((sum, node) => sum + 1 + node.blocks.reduce((s, b) => s + countNodes(b.value), 0), 0);
