// Netron reader for PaddlePaddle PIR JSON programs (model.json / __model__.json), Paddle 3.0-3.3.
// Plain ES modules without Netron imports, so that they run in the browser next to Netron and in Node tests.

import * as weights from './paddle-pir-weights.js';
import * as ops from './paddle-pir-ops.js';
import { paddle } from './paddle-pir-program.js';
import './paddle-pir-modules.js';
// The op-signature table (operand, result and attribute names) is part of the reader's module
// graph: it arrives with the reader's code, in the same round, not in a fetch of its own.
import signatures from './pir-signatures.json' with { type: 'json' };

paddle.MAX_KNOWN_VERSION = 4; // Paddle 3.3 writes base_code.version 4

paddle.ModelFactory = class {

    async match(context) {
        return this._match(context);
    }

    async _match(context) {
        const identifier = (context.identifier || '').toLowerCase();
        const isProgram = (obj) => obj && typeof obj === 'object' && !Array.isArray(obj) && 'base_code' in obj && 'program' in obj;
        if (identifier.endsWith('.pdiparams')) {
            // Weights opened directly: show the PIR program next to them (<stem>.json).
            const file = `${context.identifier.replace(/\.pdiparams$/i, '')}.json`;
            try {
                const target = await context.fetch(file);
                const stream = target.stream;
                const obj = JSON.parse(new TextDecoder('utf-8').decode(stream.peek(stream.length)));
                if (isProgram(obj)) {
                    return context.set('paddle.pir', { doc: obj, identifier: file });
                }
            } catch {
                // no PIR program beside the weights: Netron's own reader handles them
            }
            return null;
        }
        if (!identifier.endsWith('.json')) {
            return null;
        }
        const obj = await context.peek('json');
        if (isProgram(obj)) {
            return context.set('paddle.pir', { doc: obj, identifier: context.identifier });
        }
        return null;
    }

    async open(context) {
        const identifier = context.value && context.value.identifier ? context.value.identifier : context.identifier || 'model.json';
        try {
            const doc = context.value.doc;
            const header = paddle.header(doc);
            const catalog = new ops.Catalog(signatures, null);
            const program = new paddle.Program(doc.program, catalog);
            // Nothing is fetched before the graph is drawn. The weights are read after open()
            // returns, or earlier when Netron shows a tensor (paddle-pir-weights.js, Weights).
            const store = new weights.Weights(context, identifier, program.parameters);
            const model = new paddle.Model(header, program, store, signatures);
            // Descriptions, operands and attributes of the op types (pir-metadata.json, 350 KB)
            // are read after open() returns, like the weights; optional: without the table,
            // types have no documentation.
            context.value.documentation = paddle.later(() => paddle.table(context, 'pir-metadata.json')).then((metadata) => catalog.document(metadata));
            context.value.weights = paddle.later(() => store.read());
            return model;
        } catch (error) {
            if (error instanceof paddle.Error || error instanceof weights.Error) {
                throw new paddle.Error(`${error.message.replace(/\.$/, '')} in '${identifier}'.`);
            }
            // Anything else is a structure the checks above did not anticipate: still say so plainly.
            throw new paddle.Error(`Invalid PIR JSON structure in '${identifier}' (${error && error.message ? error.message : error}).`);
        }
    }
};

// Runs `task` after open() has returned, and returns its promise. In a browser it waits for the
// first idle moment of the main thread after a short pause (Netron lays the graph out in a worker
// and then draws it), so that reading tables and weights does not compete with the first draw.
// Where there is no requestIdleCallback (Node, Netron's test harness) it runs at once.
paddle.later = (task) => new Promise((resolve) => {
    const idle = globalThis.requestIdleCallback;
    if (typeof idle === 'function') {
        setTimeout(() => idle(() => resolve(), { timeout: 2000 }), 200);
    } else {
        setTimeout(resolve, 0);
    }
}).then(task);

// One of the reader's JSON tables, or null when it cannot be read.
paddle.table = (context, name) => Promise.resolve().then(() => context.asset(name)).then((text) => JSON.parse(text)).catch(() => null);

paddle.header = (doc) => {
    const base = doc.base_code;
    if (!base || typeof base !== 'object' || Array.isArray(base)) {
        throw new paddle.Error("Missing 'base_code' object");
    }
    if (base.magic !== 'pir') {
        throw new paddle.Error(`Invalid PIR magic '${JSON.stringify(base.magic)}' (expected "pir")`);
    }
    if (!Number.isInteger(base.version) || base.version < 1) {
        throw new paddle.Error(`Invalid PIR version '${JSON.stringify(base.version)}'`);
    }
    if (!doc.program || typeof doc.program !== 'object' || !Array.isArray(doc.program.regions) || doc.program.regions.length === 0) {
        throw new paddle.Error("Missing 'program.regions'");
    }
    return { version: base.version, trainable: base.trainable !== false };
};

paddle.Model = class {

    constructor(header, program, store, signatures) {
        this.format = `PaddlePaddle PIR v${header.version}`;
        this.producer = 'PaddlePaddle';
        const builder = new paddle.GraphBuilder(program, store);
        const graph = builder.graph(program.body, null, 'main');
        this.modules = [graph];
        const metadata = [];
        // Module nodes (struct_name) over the flat graph and each region's graph.
        const grouping = new paddle.ModuleGrouping();
        const plans = builder.graphs.map(([target, prefix]) => [target, grouping.group(target, builder.paths, prefix)]);
        let modules = '';
        if (grouping.modules > grouping.maxModules) {
            modules = `not grouped: ${grouping.modules} modules exceed the limit of ${grouping.maxModules}, so the graph is drawn flat (module paths are in the node names)`;
            graph.description = `Drawn flat: ${modules.substring(modules.indexOf(':') + 2, modules.indexOf(','))}.`;
        } else {
            let depth = 0;
            for (const [target, nodes] of plans) {
                target.nodes = nodes;
                depth = Math.max(depth, paddle.ModuleGrouping.depth(nodes));
            }
            if (grouping.modules > 0) {
                modules = `${grouping.modules} module nodes (from struct_name), nested up to ${depth} deep`;
            } else if (grouping.grouped) {
                modules = `none: no module has ${grouping.minNodes} or more nodes in a row`;
            } else {
                modules = 'none: the program has no struct_name';
            }
        }
        metadata.push(new paddle.Argument('trainable', header.trainable, 'boolean'));
        if (header.version > paddle.MAX_KNOWN_VERSION) {
            metadata.push(new paddle.Argument('warning', `PIR version ${header.version} is newer than the versions this reader was tested on (1-${paddle.MAX_KNOWN_VERSION})`, 'string'));
        }
        metadata.push(new paddle.Argument('operators', program.operatorCount, 'int64'));
        metadata.push(new paddle.Argument('parameters', program.parameters.length, 'int64'));
        const weights = new paddle.Argument('weights', store.description, 'string');
        store.property = weights; // updated when the weights have been read
        metadata.push(weights);
        metadata.push(new paddle.Argument('modules', modules, 'string'));
        if (signatures && signatures.paddle_version) {
            metadata.push(new paddle.Argument('signatures', `from Paddle ${signatures.paddle_version}`, 'string'));
        }
        this.metadata = metadata;
    }
};

// The values of a folded constant (pd_op.full, pd_op.full_int_array), stored the way Netron
// decodes them: little-endian, in the constant's own data type.
paddle.constantTensor = (constant) => {
    const { dataType, dims, values } = constant;
    let array = null;
    switch (dataType) {
        case 'float32': array = new Float32Array(values); break;
        case 'float64': array = new Float64Array(values); break;
        case 'float16': array = new Uint16Array(values.map((value) => paddle.float16(value))); break;
        case 'bfloat16': array = new Uint16Array(values.map((value) => paddle.bfloat16(value))); break;
        case 'int8': array = new Int8Array(values); break;
        case 'int16': array = new Int16Array(values); break;
        case 'int32': array = new Int32Array(values); break;
        case 'int64': array = new BigInt64Array(values.map((value) => BigInt(Math.trunc(value)))); break;
        case 'uint8': array = new Uint8Array(values); break;
        case 'boolean': array = new Uint8Array(values.map((value) => value ? 1 : 0)); break;
        default: throw new paddle.Error(`Unsupported constant data type '${dataType}'`);
    }
    const type = new paddle.TensorType(dataType, new paddle.TensorShape(dims));
    return { type, values: new Uint8Array(array.buffer), encoding: '<', category: 'Constant' };
};

// IEEE half precision bits of a number, rounded to nearest even (as numpy's astype does).
paddle.float16 = (value) => {
    const f32 = new Float32Array([value]);
    const bits = new Uint32Array(f32.buffer)[0];
    const sign = (bits >>> 16) & 0x8000;
    const exponent = (bits >>> 23) & 0xff;
    const mantissa = bits & 0x7fffff;
    if (exponent === 0xff) {
        return sign | 0x7c00 | (mantissa ? 0x200 : 0);
    }
    const e = exponent - 127 + 15;
    if (e >= 0x1f) {
        return sign | 0x7c00;
    }
    if (e <= 0) {
        if (e < -10) {
            return sign;
        }
        const m = mantissa | 0x800000;
        const shift = 14 - e;
        let half = m >>> shift;
        const rest = m & ((1 << shift) - 1);
        const midpoint = 1 << (shift - 1);
        if (rest > midpoint || (rest === midpoint && (half & 1))) {
            half++;
        }
        return sign | half;
    }
    let half = (e << 10) | (mantissa >>> 13);
    const rest = mantissa & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) {
        half++;
    }
    return sign | half;
};

// bfloat16 bits: the upper half of the float32, rounded to nearest even.
paddle.bfloat16 = (value) => {
    const bits = new Uint32Array(new Float32Array([value]).buffer)[0];
    if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff)) {
        return (bits >>> 16) | 0x40;
    }
    return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
};

// Turns the parsed program into Netron graph objects.
paddle.GraphBuilder = class {

    constructor(program, store) {
        this.program = program;
        this.store = store;
        this.values = new Map(); // id -> paddle.Value
        this.names = new Set();
        this.counters = new Map();
        this.folded = new Map(); // combine result id -> [operand ids]
        this.parameters = new Map(); // value id -> parameter
        for (const parameter of program.parameters) {
            this.parameters.set(parameter.value.id, parameter);
        }
        for (const op of program.allOps()) {
            if (op.type === 'builtin.combine' && program.foldable(op)) {
                this.folded.set(op.results[0].id, op.operands.filter((id) => id !== 0));
            }
        }
        this.paths = new Map(); // node -> module path segments (struct_name)
        this.graphs = []; // [graph, module path of the op that owns it]
        this.opPaths = new Map(); // op -> module path segments
        this.label = new Map(); // id -> preferred value name
        for (const op of program.allOps()) {
            if (op.type === 'pd_op.data') {
                const name = op.attributes.find((attr) => attr.name === 'name');
                if (name && typeof name.value === 'string' && op.results.length > 0) {
                    this.label.set(op.results[0].id, name.value);
                }
            }
        }
    }

    unique(name) {
        let candidate = name;
        for (let i = 1; this.names.has(candidate); i++) {
            candidate = `${name}:${i}`;
        }
        this.names.add(candidate);
        return candidate;
    }

    value(id) {
        if (!this.values.has(id)) {
            const info = this.program.values.get(id);
            if (!info) {
                throw new paddle.Error(`Operand refers to undefined value %${id}`);
            }
            const parameter = this.parameters.get(id);
            let name = '';
            let initializer = null;
            const producer = info.producer;
            if (parameter) {
                // Its values (or why they are unavailable) come when the weights are read.
                const value = new paddle.Value(this.unique(parameter.name), info.type, null, null);
                value.initializer = this.store.tensor(parameter, value);
                value.type = value.type || value.initializer.type;
                this.values.set(id, value);
                return value;
            } else if (producer && producer.type !== 'builtin.combine' && this.program.foldable(producer)) {
                name = this.unique(`%${id}`);
                initializer = paddle.constantTensor(this.program.constant(producer));
            } else if (this.label.has(id)) {
                name = this.unique(this.label.get(id));
            } else if (info.name) {
                name = this.unique(info.name);
            } else {
                name = this.unique(`%${id}`);
            }
            this.values.set(id, new paddle.Value(name, info.type, initializer, null));
        }
        return this.values.get(id);
    }

    operandValues(id) {
        if (this.folded.has(id)) {
            return this.folded.get(id).map((inner) => this.value(inner));
        }
        return [this.value(id)];
    }

    nodeName(type) {
        const short = type.split('.').pop();
        const count = this.counters.get(short) || 0;
        this.counters.set(short, count + 1);
        return `${short}_${count}`;
    }

    graph(block, parent, label) {
        const graph = new paddle.Graph(label);
        this.graphs.push([graph, parent ? this.opPaths.get(parent) || [] : []]);
        if (Array.isArray(block.inputs)) {
            graph.inputs.push(...block.inputs);
        }
        if (parent !== null) {
            // Values of enclosing blocks used in this region (implicit capture) enter it as
            // inputs, so that their uses inside have an incoming edge.
            for (const id of this.program.capturesOf([block])) {
                for (const value of this.operandValues(id)) {
                    if (!value.initializer) {
                        graph.inputs.push(new paddle.Argument(value.name, [value]));
                    }
                }
            }
        }
        for (const op of block.ops) {
            switch (op.type) {
                case 'builtin.parameter':
                    break;
                case 'pd_op.data': {
                    if (parent === null) {
                        const name = op.attributes.find((attr) => attr.name === 'name');
                        const value = this.value(op.results[0].id);
                        graph.inputs.push(new paddle.Argument(name && typeof name.value === 'string' ? name.value : value.name, [value]));
                    } else {
                        graph.nodes.push(this.node(op));
                    }
                    break;
                }
                case 'pd_op.fetch':
                case 'builtin.shadow_output': {
                    const key = op.type === 'pd_op.fetch' ? 'name' : 'output_name';
                    const name = op.attributes.find((attr) => attr.name === key);
                    const values = op.operands.filter((id) => id !== 0).flatMap((id) => this.operandValues(id));
                    graph.outputs.push(new paddle.Argument(name && typeof name.value === 'string' ? name.value : `output_${graph.outputs.length}`, values));
                    break;
                }
                case 'cf.yield': {
                    const names = this.yieldNames(parent, op.operands.length);
                    for (const [index, id] of op.operands.entries()) {
                        if (id !== 0) {
                            graph.outputs.push(new paddle.Argument(names[index], this.operandValues(id)));
                        }
                    }
                    break;
                }
                case 'builtin.combine':
                case 'pd_op.full':
                case 'pd_op.full_int_array': {
                    if (!this.program.foldable(op)) {
                        graph.nodes.push(this.node(op));
                    }
                    break;
                }
                default: {
                    graph.nodes.push(this.node(op));
                    break;
                }
            }
        }
        if (parent === null && !block.ops.some((op) => op.type === 'pd_op.fetch' || op.type === 'builtin.shadow_output')) {
            // No fetch (paddle.static.save, paddle.save): the sinks of the program are its outputs.
            for (const op of block.ops) {
                if (op.type === 'builtin.parameter' || op.type === 'pd_op.data' || this.program.foldable(op)) {
                    continue;
                }
                for (const result of op.results) {
                    if (!this.program.uses.has(result.id)) {
                        const value = this.value(result.id);
                        graph.outputs.push(new paddle.Argument(value.name, [value]));
                    }
                }
            }
        }
        return graph;
    }

    yieldNames(parent, count) {
        const names = [];
        for (let i = 0; i < count; i++) {
            if (parent && parent.type === 'pd_op.while') {
                names.push(i === 0 ? 'cond' : `loop_var_${i - 1}`);
            } else if (parent && parent.results[i]) {
                names.push(`${this.value(parent.results[i].id).name}`);
            } else {
                names.push(`out_${i}`);
            }
        }
        return names;
    }

    node(op) {
        const program = this.program;
        const signature = program.catalog.signature(op.type);
        const node = new paddle.Node(program.catalog.type(op.type), this.nodeName(op.type));
        const operandNames = this.operandNames(op, signature);
        for (const [index, id] of op.operands.entries()) {
            if (id === 0) {
                continue; // absent optional operand
            }
            node.inputs.push(new paddle.Argument(operandNames[index], this.operandValues(id)));
        }
        if (op.captures.length > 0) {
            node.inputs.push(new paddle.Argument('captured', op.captures.flatMap((id) => this.operandValues(id))));
        }
        const resultNames = signature && signature.outputs ? signature.outputs : [];
        for (const [index, result] of op.results.entries()) {
            let name = op.type === 'builtin.split' || resultNames.length === 0 ? `out_${index}` : resultNames[index] || `out_${index}`;
            if (op.type === 'pd_op.while') {
                name = `loop_var_${index}`; // the final values of the loop variables
            }
            node.outputs.push(new paddle.Argument(name, [this.value(result.id)]));
        }
        for (const attr of op.attributes) {
            if (attr.name === 'struct_name') {
                // The module path names the node (Netron shows it in the sidebar and search finds
                // it) and places it in a module node (paddle.ModuleGrouping), never in a layout
                // group: see paddle.Graph.
                const module = typeof attr.value === 'string' ? attr.value.replace(/^\/+|\/+$/g, '') : '';
                if (module) {
                    node.name = `${module}/${node.name}`;
                    const path = module.split('/').filter((segment) => segment.length > 0);
                    this.paths.set(node, path);
                    this.opPaths.set(op, path);
                }
            }
            const hidden = attr.name === 'op_role' || attr.name === 'op_dist_attr' || attr.name === 'chunk_id';
            node.attributes.push(new paddle.Argument(attr.name, attr.value, attr.type, hidden ? false : undefined));
        }
        if (op.regions.length > 0) {
            const labels = program.catalog.regionLabels(op.type, op.regions.length);
            for (const [index, region] of op.regions.entries()) {
                for (const [blockIndex, block] of region.blocks.entries()) {
                    const label = region.blocks.length > 1 ? `${labels[index]}.${blockIndex}` : labels[index];
                    this.blockArgs(op, block, node);
                    const graph = this.graph(block, op, label);
                    node.blocks.push(new paddle.Argument(label, graph, 'graph'));
                }
            }
        }
        return node;
    }

    blockArgs(op, block, node) {
        const inputs = [];
        for (const [index, arg] of block.args.entries()) {
            let label = arg.key || `arg_${index}`;
            if (op.type === 'pd_op.while') {
                label = `loop_var_${index}`;
            }
            if (!this.values.has(arg.id)) {
                this.values.set(arg.id, new paddle.Value(this.unique(`${node.name}.${label}`), arg.type, null));
            }
            inputs.push(new paddle.Argument(label, [this.values.get(arg.id)]));
        }
        block.inputs = inputs;
    }

    operandNames(op, signature) {
        const names = signature && Array.isArray(signature.inputs) ? signature.inputs : [];
        if (op.type === 'pd_op.while') {
            return op.operands.map((_, index) => index === 0 ? 'cond' : `loop_var_${index - 1}`);
        }
        if (op.type === 'pd_op.if') {
            return op.operands.map((_, index) => index === 0 ? 'cond' : `input_${index}`);
        }
        if (names.length === 0) {
            return op.operands.map((_, index) => `input_${index}`);
        }
        return op.operands.map((_, index) => names[index] || `input_${index}`);
    }
};

// Never a compound graph (no 'groups'). Netron 9.3's layout of grouped graphs can fail: the
// crossing-reduction pass of its dagre.js walks in[0].vNode / out[0].wNode two layers at a time
// and assumes real nodes sit on even layers with edge dummies between them. That holds for flat
// graphs (every edge has minlen 2), but the nesting graph of clusters puts border nodes on their
// own ranks, so inside and around groups real nodes land on odd layers, and the walk reaches a
// source (a graph input) or a sink with no edge there: "Cannot read properties of undefined
// (reading 'vNode')". No choice of groups avoids it (tests/js/layout.test.mjs). Modules are
// therefore nodes whose type is a graph (paddle-pir-modules.js): each level is a flat layout.
paddle.Graph = class {

    constructor(name) {
        this.name = name;
        this.inputs = [];
        this.outputs = [];
        this.nodes = [];
    }
};

paddle.Argument = class {

    constructor(name, value, type, visible) {
        this.name = name;
        this.value = value;
        if (type) {
            this.type = type;
        }
        if (visible === false) {
            this.visible = false;
        }
    }
};

paddle.Value = class {

    constructor(name, type, initializer, description) {
        this.name = name;
        this.type = !type && initializer ? initializer.type : type;
        this.initializer = initializer || null;
        if (description) {
            this.description = description;
        }
    }
};

paddle.Node = class {

    constructor(type, name) {
        this.type = type; // {name, identifier: 'pd_op.conv2d', category?, description?}
        this.name = name;
        this.inputs = [];
        this.outputs = [];
        this.attributes = [];
        this.blocks = [];
    }
};

export const ModelFactory = paddle.ModelFactory;
export const ReaderError = paddle.Error;
export const Program = paddle.Program;
