// Netron reader for PaddlePaddle PIR JSON programs (model.json / __model__.json), Paddle 3.0-3.3.
// Plain ES modules without Netron imports, so that they run in the browser next to Netron and in Node tests.

import * as weights from './paddle-pir-weights.js';
import * as ops from './paddle-pir-ops.js';

const pir = {};

pir.MAX_KNOWN_VERSION = 4; // Paddle 3.3 writes base_code.version 4

pir.ModelFactory = class {

    async match(context) {
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
            const header = pir.header(doc);
            let signatures = null;
            try {
                const text = await context.asset('pir-signatures.json');
                signatures = JSON.parse(text);
            } catch {
                signatures = null; // operand and result names fall back to positions
            }
            const program = new pir.Program(doc.program, new ops.Catalog(signatures));
            const store = await weights.load(context, identifier, program.parameters);
            return new pir.Model(header, program, store, signatures);
        } catch (error) {
            if (error instanceof pir.Error || error instanceof weights.Error) {
                throw new pir.Error(`${error.message.replace(/\.$/, '')} in '${identifier}'.`);
            }
            // Anything else is a structure the checks above did not anticipate: still say so plainly.
            throw new pir.Error(`Invalid PIR JSON structure in '${identifier}' (${error && error.message ? error.message : error}).`);
        }
    }
};

pir.header = (doc) => {
    const base = doc.base_code;
    if (!base || typeof base !== 'object' || Array.isArray(base)) {
        throw new pir.Error("Missing 'base_code' object");
    }
    if (base.magic !== 'pir') {
        throw new pir.Error(`Invalid PIR magic '${JSON.stringify(base.magic)}' (expected "pir")`);
    }
    if (!Number.isInteger(base.version) || base.version < 1) {
        throw new pir.Error(`Invalid PIR version '${JSON.stringify(base.version)}'`);
    }
    if (!doc.program || typeof doc.program !== 'object' || !Array.isArray(doc.program.regions) || doc.program.regions.length === 0) {
        throw new pir.Error("Missing 'program.regions'");
    }
    return { version: base.version, trainable: base.trainable !== false };
};

// A checked view of the JSON: every access names the path it failed at.
pir.expect = {
    array(value, path) {
        if (!Array.isArray(value)) {
            throw new pir.Error(`Expected a list at '${path}'`);
        }
        return value;
    },
    object(value, path) {
        if (!value || typeof value !== 'object' || Array.isArray(value)) {
            throw new pir.Error(`Expected an object at '${path}'`);
        }
        return value;
    },
    id(value, path) {
        if (!Number.isInteger(value)) {
            throw new pir.Error(`Expected an integer value id at '${path}'`);
        }
        return value;
    },
    string(value, path) {
        if (typeof value !== 'string') {
            throw new pir.Error(`Expected a string at '${path}'`);
        }
        return value;
    }
};

pir.DIALECTS = new Map([['0', 'builtin'], ['1', 'pd_op'], ['2', 'cf'], ['3', 'custom_op'], ['4', 'pd_dist']]);

pir.opName = (raw, path) => {
    pir.expect.string(raw, path);
    if (raw === 'p') {
        return 'builtin.parameter';
    }
    const dot = raw.indexOf('.');
    if (dot <= 0) {
        return raw;
    }
    const dialect = raw.substring(0, dot);
    return `${pir.DIALECTS.get(dialect) || dialect}.${raw.substring(dot + 1)}`;
};

pir.DTYPES = new Map([
    ['t_f32', 'float32'], ['t_f16', 'float16'], ['t_bf16', 'bfloat16'], ['t_f64', 'float64'],
    ['t_i8', 'int8'], ['t_ui8', 'uint8'], ['t_i16', 'int16'], ['t_i32', 'int32'], ['t_i64', 'int64'],
    ['t_index', 'int64'], ['t_bool', 'boolean'], ['t_c64', 'complex64'], ['t_c128', 'complex128'],
    ['t_f8e4m3fn', 'float8e4m3fn'], ['t_f8e5m2', 'float8e5m2'], ['t_undefined', '?']
]);

pir.typeName = (raw) => {
    const text = typeof raw === 'string' ? raw : '';
    const dot = text.indexOf('.');
    return dot === -1 ? text : text.substring(dot + 1);
};

pir.parseType = (tt, path) => {
    if (tt === undefined || tt === null) {
        return null;
    }
    pir.expect.object(tt, path);
    const kind = pir.typeName(tt['#']);
    if (pir.DTYPES.has(kind)) {
        return new pir.TensorType(pir.DTYPES.get(kind), new pir.TensorShape([]));
    }
    const data = tt.D;
    switch (kind) {
        case 't_dtensor':
        case 't_selected_rows':
        case 't_dense_tensor_array':
        case 't_sparse_coo_tensor':
        case 't_sparse_csr_tensor':
        case 't_dist_dense_tensor': {
            pir.expect.array(data, `${path}.D`);
            const dtype = data[0] && typeof data[0] === 'object' ? pir.DTYPES.get(pir.typeName(data[0]['#'])) || pir.typeName(data[0]['#']) : '?';
            const dims = Array.isArray(data[1]) ? data[1] : [];
            const denotation = kind === 't_dtensor' ? '' : kind.substring(2).replace(/_/g, ' ');
            return new pir.TensorType(dtype || '?', new pir.TensorShape(dims), denotation);
        }
        case 't_vec': {
            pir.expect.array(data, `${path}.D`);
            return new pir.VectorType(data.map((item, index) => pir.parseType(item, `${path}.D[${index}]`)));
        }
        default:
            return new pir.OpaqueType(kind || '?');
    }
};

pir.Model = class {

    constructor(header, program, store, signatures) {
        this.format = `PaddlePaddle PIR v${header.version}`;
        this.producer = 'PaddlePaddle';
        const builder = new pir.GraphBuilder(program, store);
        const graph = builder.graph(program.body, null, 'main');
        this.modules = [graph];
        const metadata = [];
        metadata.push(new pir.Argument('trainable', header.trainable, 'boolean'));
        if (header.version > pir.MAX_KNOWN_VERSION) {
            metadata.push(new pir.Argument('warning', `PIR version ${header.version} is newer than the versions this reader was tested on (1-${pir.MAX_KNOWN_VERSION})`, 'string'));
        }
        metadata.push(new pir.Argument('operators', program.operatorCount, 'int64'));
        metadata.push(new pir.Argument('parameters', program.parameters.length, 'int64'));
        metadata.push(new pir.Argument('weights', store.description, 'string'));
        if (signatures && signatures.paddle_version) {
            metadata.push(new pir.Argument('signatures', `from Paddle ${signatures.paddle_version}`, 'string'));
        }
        this.metadata = metadata;
    }
};

// Parsed program: ops, values, uses and captured values, independent of Netron's objects.
pir.Program = class {

    constructor(json, catalog) {
        this.catalog = catalog;
        this.values = new Map(); // id -> {id, type, producer, index, arg}
        this.uses = new Map(); // id -> [op]
        this.parameters = [];
        this.operatorCount = 0;
        const regions = pir.expect.array(json.regions, 'program.regions');
        const region = this.region(regions[0], 'program.regions[0]', null);
        if (region.blocks.length === 0) {
            throw new pir.Error("Empty 'program.regions[0].blocks'");
        }
        this.body = region.blocks[0];
        for (const op of this.allOps()) {
            op.captures = op.regions.length > 0 ? this.captures(op) : [];
        }
    }

    region(json, path, parent) {
        pir.expect.object(json, path);
        const blocks = pir.expect.array(json.blocks, `${path}.blocks`);
        return { name: typeof json['#'] === 'string' ? json['#'] : '', blocks: blocks.map((block, index) => this.block(block, `${path}.blocks[${index}]`, parent)) };
    }

    block(json, path, parent) {
        pir.expect.object(json, path);
        const block = { name: typeof json['#'] === 'string' ? json['#'] : '', args: [], ops: [], parent };
        const args = Array.isArray(json.args) ? json.args : [];
        if (json.args !== undefined && !Array.isArray(json.args)) {
            throw new pir.Error(`Expected a list at '${path}.args'`);
        }
        const kwargs = Array.isArray(json.kwargs) ? json.kwargs : [];
        for (const [index, arg] of args.concat(kwargs).entries()) {
            const where = `${path}.args[${index}]`;
            pir.expect.object(arg, where);
            // Paddle 3.3 writes block arguments as {"#": -1, "TT": ...}; results use "%".
            const id = pir.expect.id(arg['%'] === undefined ? arg['#'] : arg['%'], where);
            const value = { id, type: pir.parseType(arg.TT, `${where}.TT`), producer: null, index, arg: block, key: typeof arg.key === 'string' ? arg.key : null };
            this.define(value, where);
            block.args.push(value);
        }
        const list = pir.expect.array(json.ops, `${path}.ops`);
        for (const [index, op] of list.entries()) {
            block.ops.push(this.op(op, `${path}.ops[${index}]`, block));
        }
        return block;
    }

    define(value, path) {
        if (value.id === 0) {
            throw new pir.Error(`Value id 0 is reserved for absent operands at '${path}'`);
        }
        if (this.values.has(value.id)) {
            throw new pir.Error(`Value id ${value.id} is defined twice at '${path}'`);
        }
        this.values.set(value.id, value);
    }

    op(json, path, block) {
        pir.expect.object(json, path);
        const type = pir.opName(json['#'], `${path}.#`);
        const op = { type, path, block, operands: [], results: [], attributes: [], regions: [], parameter: null };
        if (type === 'builtin.parameter') {
            const attrs = pir.expect.array(json.A, `${path}.A`);
            const name = pir.expect.string(attrs[3], `${path}.A[3]`);
            const flags = Array.isArray(json.OA) ? json.OA : null; // absent when saved with trainable=False
            const output = Array.isArray(json.O) ? json.O[0] : json.O;
            pir.expect.object(output, `${path}.O`);
            const id = pir.expect.id(output['%'], `${path}.O.%`);
            const value = { id, type: pir.parseType(output.TT, `${path}.O.TT`), producer: op, index: 0 };
            this.define(value, `${path}.O`);
            op.results.push(value);
            op.parameter = {
                name,
                value,
                distributed: attrs[0] === 1 || attrs[0] === true,
                isParameter: attrs[1] === 1 || attrs[1] === true,
                needClip: attrs[2] === 1 || attrs[2] === true,
                persistable: flags ? flags[0] === 1 || flags[0] === true : null,
                stopGradient: flags ? flags[1] === 1 || flags[1] === true : null,
                trainable: flags ? flags[2] === 1 || flags[2] === true : null
            };
            this.parameters.push(op.parameter);
            return op;
        }
        this.operatorCount++;
        const inputs = json.I === undefined ? [] : pir.expect.array(json.I, `${path}.I`);
        for (const [index, operand] of inputs.entries()) {
            pir.expect.object(operand, `${path}.I[${index}]`);
            const id = pir.expect.id(operand['%'], `${path}.I[${index}].%`);
            op.operands.push(id);
            if (id !== 0) {
                if (!this.uses.has(id)) {
                    this.uses.set(id, []);
                }
                this.uses.get(id).push(op);
            }
        }
        const outputs = json.O === undefined ? [] : pir.expect.array(json.O, `${path}.O`);
        for (const [index, result] of outputs.entries()) {
            pir.expect.object(result, `${path}.O[${index}]`);
            const id = pir.expect.id(result['%'], `${path}.O[${index}].%`);
            const value = { id, type: pir.parseType(result.TT, `${path}.O[${index}].TT`), producer: op, index };
            this.define(value, `${path}.O[${index}]`);
            op.results.push(value);
        }
        const attrs = json.A === undefined ? [] : pir.expect.array(json.A, `${path}.A`);
        for (const [index, attr] of attrs.entries()) {
            pir.expect.object(attr, `${path}.A[${index}]`);
            const name = pir.expect.string(attr.N, `${path}.A[${index}].N`);
            op.attributes.push({ name, ...pir.parseAttribute(attr.AT, `${path}.A[${index}].AT`) });
        }
        const regions = json.regions === undefined ? [] : pir.expect.array(json.regions, `${path}.regions`);
        for (const [index, region] of regions.entries()) {
            op.regions.push(this.region(region, `${path}.regions[${index}]`, op));
        }
        return op;
    }

    * allOps(block = this.body) {
        for (const op of block.ops) {
            yield op;
            for (const region of op.regions) {
                for (const inner of region.blocks) {
                    yield* this.allOps(inner);
                }
            }
        }
    }

    // Values used inside the regions of `op` but defined outside them (implicit capture),
    // including block arguments of enclosing regions (nested control flow).
    captures(op) {
        const inside = new Set();
        const used = [];
        for (const region of op.regions) {
            for (const block of region.blocks) {
                for (const arg of block.args) {
                    inside.add(arg.id);
                }
                for (const inner of this.allOps(block)) {
                    for (const result of inner.results) {
                        inside.add(result.id);
                    }
                    for (const region of inner.regions) {
                        for (const block of region.blocks) {
                            for (const arg of block.args) {
                                inside.add(arg.id);
                            }
                        }
                    }
                    used.push(...inner.operands);
                }
            }
        }
        const seen = new Set();
        const result = [];
        for (const id of used) {
            if (id !== 0 && !inside.has(id) && !seen.has(id) && this.values.has(id)) {
                seen.add(id);
                result.push(id);
            }
        }
        return result;
    }

    // builtin.combine packs values into a vector. When every use is an ordinary operand, the
    // consumer shows the list directly (as Netron does for ONNX variadic inputs).
    // Small constants (full_int_array, full of at most 64 values in at most one dimension) are
    // folded the same way: the consumer shows them as constant inputs with their values.
    foldable(op) {
        if (op.results.length !== 1 || (op.type !== 'builtin.combine' && !this.constant(op))) {
            return false;
        }
        const uses = this.uses.get(op.results[0].id) || [];
        return uses.length > 0 && uses.every((user) => user.type !== 'cf.yield' && user.block === op.block);
    }

    constant(op) {
        if ((op.type !== 'pd_op.full' && op.type !== 'pd_op.full_int_array') || op.operands.length !== 0 || op.results.length !== 1) {
            return null;
        }
        const attr = (name) => {
            const found = op.attributes.find((item) => item.name === name);
            return found ? found.value : undefined;
        };
        const dataType = pir.CONSTANT_TYPES.get(attr('dtype'));
        if (!dataType) {
            return null;
        }
        let dims = [];
        let values = [];
        if (op.type === 'pd_op.full_int_array') {
            values = attr('value');
            dims = [Array.isArray(values) ? values.length : 0];
        } else {
            dims = attr('shape');
            const value = attr('value');
            if (!Array.isArray(dims) || dims.length > 1 || !dims.every((dim) => Number.isInteger(dim) && dim >= 0) || typeof value !== 'number') {
                return null;
            }
            values = new Array(dims.length === 0 ? 1 : dims[0]).fill(value);
        }
        if (!Array.isArray(values) || values.length > 64 || !values.every((value) => typeof value === 'number')) {
            return null;
        }
        return { dataType, dims, values };
    }
};

pir.CONSTANT_TYPES = new Map([
    ['float32', 'float32'], ['float64', 'float64'], ['int32', 'int32'], ['int64', 'int64'], ['bool', 'boolean'], ['int8', 'int8'], ['uint8', 'uint8'], ['int16', 'int16']
]);

pir.constantTensor = (constant) => {
    const { dataType, dims, values } = constant;
    let array = null;
    switch (dataType) {
        case 'float32': array = new Float32Array(values); break;
        case 'float64': array = new Float64Array(values); break;
        case 'int32': array = new Int32Array(values); break;
        case 'int16': array = new Int16Array(values); break;
        case 'int64': array = new BigInt64Array(values.map((value) => BigInt(Math.trunc(value)))); break;
        case 'int8': array = new Int8Array(values); break;
        default: array = new Uint8Array(values.map((value) => value ? 1 : 0)); break; // uint8, boolean
    }
    const type = new pir.TensorType(dataType, new pir.TensorShape(dims));
    return { type, values: new Uint8Array(array.buffer), encoding: '<', category: 'Constant' };
};

pir.parseAttribute = (at, path) => {
    pir.expect.object(at, path);
    const kind = pir.typeName(at['#']);
    const data = at.D;
    switch (kind) {
        case 'a_bool': return { type: 'boolean', value: data };
        case 'a_i32': return { type: 'int32', value: data };
        case 'a_i64': case 'a_index': return { type: 'int64', value: data };
        case 'a_f32': return { type: 'float32', value: data };
        case 'a_f64': return { type: 'float64', value: data };
        case 'a_str': case 'a_tensorname': return { type: 'string', value: data };
        case 'a_intarray': return { type: 'int64[]', value: Array.isArray(data) ? data : [] };
        case 'a_dtype': return { type: 'DataType', value: data };
        case 'a_layout': return { type: 'DataLayout', value: data };
        case 'a_place': {
            const places = ['undefined', 'cpu', 'gpu', 'gpu_pinned', 'xpu', 'ipu', 'custom'];
            if (Array.isArray(data)) {
                const name = places[data[0]] || String(data[0]);
                return { type: 'Place', value: name === 'undefined' ? 'undefined' : `${name}:${data[1]}` };
            }
            return { type: 'Place', value: JSON.stringify(data) };
        }
        case 'a_type': {
            const type = pir.parseType(data, `${path}.D`);
            return { type: 'type', value: type ? type.toString() : '' };
        }
        case 'a_array': {
            const items = pir.expect.array(data, `${path}.D`).map((item, index) => pir.parseAttribute(item, `${path}.D[${index}]`));
            const types = new Set(items.map((item) => item.type));
            const type = types.size === 1 ? `${items[0].type}[]` : 'attribute[]';
            return { type, value: items.map((item) => item.value) };
        }
        default:
            return { type: 'string', value: data === undefined ? kind : JSON.stringify(data) };
    }
};

// Turns the parsed program into Netron graph objects.
pir.GraphBuilder = class {

    constructor(program, store) {
        this.program = program;
        this.store = store;
        this.values = new Map(); // id -> pir.Value
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
                throw new pir.Error(`Operand refers to undefined value %${id}`);
            }
            const parameter = this.parameters.get(id);
            let name = '';
            let initializer = null;
            const producer = info.producer;
            if (parameter) {
                name = this.unique(parameter.name);
                initializer = this.store.tensor(parameter);
            } else if (producer && producer.type !== 'builtin.combine' && this.program.foldable(producer)) {
                name = this.unique(`%${id}`);
                initializer = pir.constantTensor(this.program.constant(producer));
            } else if (this.label.has(id)) {
                name = this.unique(this.label.get(id));
            } else if (info.name) {
                name = this.unique(info.name);
            } else {
                name = this.unique(`%${id}`);
            }
            this.values.set(id, new pir.Value(name, info.type, initializer));
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
        const graph = new pir.Graph(label);
        if (Array.isArray(block.inputs)) {
            graph.inputs.push(...block.inputs);
        }
        let groups = false;
        for (const op of block.ops) {
            switch (op.type) {
                case 'builtin.parameter':
                    break;
                case 'pd_op.data': {
                    if (parent === null) {
                        const name = op.attributes.find((attr) => attr.name === 'name');
                        const value = this.value(op.results[0].id);
                        graph.inputs.push(new pir.Argument(name && typeof name.value === 'string' ? name.value : value.name, [value]));
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
                    graph.outputs.push(new pir.Argument(name && typeof name.value === 'string' ? name.value : `output_${graph.outputs.length}`, values));
                    break;
                }
                case 'cf.yield': {
                    const names = this.yieldNames(parent, op.operands.length);
                    for (const [index, id] of op.operands.entries()) {
                        if (id !== 0) {
                            graph.outputs.push(new pir.Argument(names[index], this.operandValues(id)));
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
                    const node = this.node(op);
                    groups = groups || Boolean(node.group);
                    graph.nodes.push(node);
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
                        graph.outputs.push(new pir.Argument(value.name, [value]));
                    }
                }
            }
        }
        graph.groups = groups;
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
        const node = new pir.Node(program.catalog.type(op.type), this.nodeName(op.type));
        const operandNames = this.operandNames(op, signature);
        for (const [index, id] of op.operands.entries()) {
            if (id === 0) {
                continue; // absent optional operand
            }
            node.inputs.push(new pir.Argument(operandNames[index], this.operandValues(id)));
        }
        if (op.captures.length > 0) {
            node.inputs.push(new pir.Argument('captured', op.captures.flatMap((id) => this.operandValues(id))));
        }
        const resultNames = signature && signature.outputs ? signature.outputs : [];
        for (const [index, result] of op.results.entries()) {
            let name = op.type === 'builtin.split' || resultNames.length === 0 ? `out_${index}` : resultNames[index] || `out_${index}`;
            if (op.type === 'pd_op.while') {
                name = `loop_var_${index}`; // the final values of the loop variables
            }
            node.outputs.push(new pir.Argument(name, [this.value(result.id)]));
        }
        for (const attr of op.attributes) {
            if (attr.name === 'struct_name') {
                const group = typeof attr.value === 'string' ? attr.value.replace(/^\/+|\/+$/g, '') : '';
                if (group) {
                    node.group = group;
                    node.name = `${group}/${node.name}`;
                }
            }
            const hidden = attr.name === 'struct_name' || attr.name === 'op_role' || attr.name === 'op_dist_attr' || attr.name === 'chunk_id';
            node.attributes.push(new pir.Argument(attr.name, attr.value, attr.type, hidden ? false : undefined));
        }
        if (op.regions.length > 0) {
            const labels = program.catalog.regionLabels(op.type, op.regions.length);
            for (const [index, region] of op.regions.entries()) {
                for (const [blockIndex, block] of region.blocks.entries()) {
                    const label = region.blocks.length > 1 ? `${labels[index]}.${blockIndex}` : labels[index];
                    this.blockArgs(op, block, node);
                    const graph = this.graph(block, op, label);
                    node.blocks.push(new pir.Argument(label, graph, 'graph'));
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
                this.values.set(arg.id, new pir.Value(this.unique(`${node.name}.${label}`), arg.type, null));
            }
            inputs.push(new pir.Argument(label, [this.values.get(arg.id)]));
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

pir.Graph = class {

    constructor(name) {
        this.name = name;
        this.inputs = [];
        this.outputs = [];
        this.nodes = [];
        this.groups = false;
    }
};

pir.Argument = class {

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

pir.Value = class {

    constructor(name, type, initializer) {
        this.name = name;
        this.type = !type && initializer ? initializer.type : type;
        this.initializer = initializer || null;
    }
};

pir.Node = class {

    constructor(type, name) {
        this.type = type; // {name, identifier: 'pd_op.conv2d', category?, description?}
        this.name = name;
        this.inputs = [];
        this.outputs = [];
        this.attributes = [];
        this.blocks = [];
    }
};

pir.TensorType = class {

    constructor(dataType, shape, denotation) {
        this.dataType = dataType;
        this.shape = shape;
        if (denotation) {
            this.denotation = denotation;
        }
    }

    toString() {
        return this.dataType + this.shape.toString();
    }
};

pir.TensorShape = class {

    constructor(dimensions) {
        this.dimensions = dimensions.map((dim) => Number.isInteger(dim) && dim < 0 ? '?' : dim);
    }

    toString() {
        return this.dimensions.length > 0 ? `[${this.dimensions.join(',')}]` : '';
    }
};

pir.VectorType = class {

    constructor(types) {
        this.types = types;
        this.dataType = 'vector';
        this.shape = new pir.TensorShape([types.length]);
        this.denotation = `vector of ${types.length}`;
    }

    toString() {
        return `vector<${this.types.map((type) => type ? type.toString() : '?').join(', ')}>`;
    }
};

pir.OpaqueType = class {

    constructor(name) {
        this.name = name;
    }

    toString() {
        return this.name;
    }
};

pir.Error = class extends Error {

    constructor(message) {
        super(message);
        this.name = 'Error loading Paddle PIR model.';
    }
};

export const ModelFactory = pir.ModelFactory;
export const ReaderError = pir.Error;
export const Program = pir.Program;
