// Parsing of Paddle PIR JSON programs (the schema Paddle 3.0-3.3 writes, versions 1-4) into
// plain objects: ops, values, uses, captured values, types and attributes. Every access that can
// fail names the JSON path. Used by paddle-paddle.js, which turns the result into Netron's objects.

export const paddle = {};

// A checked view of the JSON: every access names the path it failed at.
paddle.expect = {
    array(value, path) {
        if (!Array.isArray(value)) {
            throw new paddle.Error(`Expected a list at '${path}'`);
        }
        return value;
    },
    object(value, path) {
        if (!value || typeof value !== 'object' || Array.isArray(value)) {
            throw new paddle.Error(`Expected an object at '${path}'`);
        }
        return value;
    },
    id(value, path) {
        if (!Number.isInteger(value)) {
            throw new paddle.Error(`Expected an integer value id at '${path}'`);
        }
        return value;
    },
    string(value, path) {
        if (typeof value !== 'string') {
            throw new paddle.Error(`Expected a string at '${path}'`);
        }
        return value;
    }
};

paddle.DIALECTS = new Map([['0', 'builtin'], ['1', 'pd_op'], ['2', 'cf'], ['3', 'custom_op'], ['4', 'pd_dist']]);

paddle.opName = (raw, path) => {
    paddle.expect.string(raw, path);
    if (raw === 'p') {
        return 'builtin.parameter';
    }
    const dot = raw.indexOf('.');
    if (dot <= 0) {
        return raw;
    }
    const dialect = raw.substring(0, dot);
    return `${paddle.DIALECTS.get(dialect) || dialect}.${raw.substring(dot + 1)}`;
};

paddle.DTYPES = new Map([
    ['t_f32', 'float32'], ['t_f16', 'float16'], ['t_bf16', 'bfloat16'], ['t_f64', 'float64'],
    ['t_i8', 'int8'], ['t_ui8', 'uint8'], ['t_i16', 'int16'], ['t_i32', 'int32'], ['t_i64', 'int64'],
    ['t_index', 'int64'], ['t_bool', 'boolean'], ['t_c64', 'complex64'], ['t_c128', 'complex128'],
    ['t_f8e4m3fn', 'float8e4m3fn'], ['t_f8e5m2', 'float8e5m2'], ['t_undefined', '?']
]);

paddle.typeName = (raw) => {
    const text = typeof raw === 'string' ? raw : '';
    const dot = text.indexOf('.');
    return dot === -1 ? text : text.substring(dot + 1);
};

paddle.parseType = (tt, path) => {
    if (tt === undefined || tt === null) {
        return null;
    }
    paddle.expect.object(tt, path);
    const kind = paddle.typeName(tt['#']);
    if (paddle.DTYPES.has(kind)) {
        return new paddle.TensorType(paddle.DTYPES.get(kind), new paddle.TensorShape([]));
    }
    const data = tt.D;
    switch (kind) {
        case 't_dtensor':
        case 't_selected_rows':
        case 't_dense_tensor_array':
        case 't_sparse_coo_tensor':
        case 't_sparse_csr_tensor':
        case 't_dist_dense_tensor': {
            paddle.expect.array(data, `${path}.D`);
            const dtype = data[0] && typeof data[0] === 'object' ? paddle.DTYPES.get(paddle.typeName(data[0]['#'])) || paddle.typeName(data[0]['#']) : '?';
            const dims = Array.isArray(data[1]) ? data[1] : [];
            const denotation = kind === 't_dtensor' ? '' : kind.substring(2).replace(/_/g, ' ');
            return new paddle.TensorType(dtype || '?', new paddle.TensorShape(dims), denotation);
        }
        case 't_vec': {
            paddle.expect.array(data, `${path}.D`);
            return new paddle.VectorType(data.map((item, index) => paddle.parseType(item, `${path}.D[${index}]`)));
        }
        default:
            return new paddle.OpaqueType(kind || '?');
    }
};

// Parsed program: ops, values, uses and captured values, independent of Netron's objects.
paddle.Program = class {

    constructor(json, catalog) {
        this.catalog = catalog;
        this.values = new Map(); // id -> {id, type, producer, index, arg}
        this.uses = new Map(); // id -> [op]
        this.parameters = [];
        this.operatorCount = 0;
        const regions = paddle.expect.array(json.regions, 'program.regions');
        const region = this.region(regions[0], 'program.regions[0]', null);
        if (region.blocks.length === 0) {
            throw new paddle.Error("Empty 'program.regions[0].blocks'");
        }
        this.body = region.blocks[0];
        for (const op of this.allOps()) {
            op.captures = op.regions.length > 0 ? this.captures(op) : [];
        }
    }

    region(json, path, parent) {
        paddle.expect.object(json, path);
        const blocks = paddle.expect.array(json.blocks, `${path}.blocks`);
        return { name: typeof json['#'] === 'string' ? json['#'] : '', blocks: blocks.map((block, index) => this.block(block, `${path}.blocks[${index}]`, parent)) };
    }

    block(json, path, parent) {
        paddle.expect.object(json, path);
        const block = { name: typeof json['#'] === 'string' ? json['#'] : '', args: [], ops: [], parent };
        const args = Array.isArray(json.args) ? json.args : [];
        if (json.args !== undefined && !Array.isArray(json.args)) {
            throw new paddle.Error(`Expected a list at '${path}.args'`);
        }
        const kwargs = Array.isArray(json.kwargs) ? json.kwargs : [];
        for (const [index, arg] of args.concat(kwargs).entries()) {
            const where = `${path}.args[${index}]`;
            paddle.expect.object(arg, where);
            // Paddle 3.3 writes block arguments as {"#": -1, "TT": ...}; results use "%".
            const id = paddle.expect.id(arg['%'] === undefined ? arg['#'] : arg['%'], where);
            const value = { id, type: paddle.parseType(arg.TT, `${where}.TT`), producer: null, index, arg: block, key: typeof arg.key === 'string' ? arg.key : null };
            this.define(value, where);
            block.args.push(value);
        }
        const list = paddle.expect.array(json.ops, `${path}.ops`);
        for (const [index, op] of list.entries()) {
            block.ops.push(this.op(op, `${path}.ops[${index}]`, block));
        }
        return block;
    }

    define(value, path) {
        if (value.id === 0) {
            throw new paddle.Error(`Value id 0 is reserved for absent operands at '${path}'`);
        }
        if (this.values.has(value.id)) {
            throw new paddle.Error(`Value id ${value.id} is defined twice at '${path}'`);
        }
        this.values.set(value.id, value);
    }

    op(json, path, block) {
        paddle.expect.object(json, path);
        const type = paddle.opName(json['#'], `${path}.#`);
        const op = { type, path, block, operands: [], results: [], attributes: [], regions: [], parameter: null };
        if (type === 'builtin.parameter') {
            const attrs = paddle.expect.array(json.A, `${path}.A`);
            const name = paddle.expect.string(attrs[3], `${path}.A[3]`);
            const flags = Array.isArray(json.OA) ? json.OA : null; // absent when saved with trainable=False
            const output = Array.isArray(json.O) ? json.O[0] : json.O;
            paddle.expect.object(output, `${path}.O`);
            const id = paddle.expect.id(output['%'], `${path}.O.%`);
            const value = { id, type: paddle.parseType(output.TT, `${path}.O.TT`), producer: op, index: 0 };
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
        const inputs = json.I === undefined ? [] : paddle.expect.array(json.I, `${path}.I`);
        for (const [index, operand] of inputs.entries()) {
            paddle.expect.object(operand, `${path}.I[${index}]`);
            const id = paddle.expect.id(operand['%'], `${path}.I[${index}].%`);
            op.operands.push(id);
            if (id !== 0) {
                if (!this.uses.has(id)) {
                    this.uses.set(id, []);
                }
                this.uses.get(id).push(op);
            }
        }
        const outputs = json.O === undefined ? [] : paddle.expect.array(json.O, `${path}.O`);
        for (const [index, result] of outputs.entries()) {
            paddle.expect.object(result, `${path}.O[${index}]`);
            const id = paddle.expect.id(result['%'], `${path}.O[${index}].%`);
            const value = { id, type: paddle.parseType(result.TT, `${path}.O[${index}].TT`), producer: op, index };
            this.define(value, `${path}.O[${index}]`);
            op.results.push(value);
        }
        const attrs = json.A === undefined ? [] : paddle.expect.array(json.A, `${path}.A`);
        for (const [index, attr] of attrs.entries()) {
            paddle.expect.object(attr, `${path}.A[${index}]`);
            const name = paddle.expect.string(attr.N, `${path}.A[${index}].N`);
            op.attributes.push({ name, ...paddle.parseAttribute(attr.AT, `${path}.A[${index}].AT`) });
        }
        const regions = json.regions === undefined ? [] : paddle.expect.array(json.regions, `${path}.regions`);
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
        return this.capturesOf(op.regions.flatMap((region) => region.blocks));
    }

    // Values used in `blocks` (nested regions included) but defined outside them.
    capturesOf(blocks) {
        const inside = new Set();
        const used = [];
        for (const block of blocks) {
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
        const dataType = paddle.CONSTANT_TYPES.get(attr('dtype'));
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

paddle.CONSTANT_TYPES = new Map([
    ['float32', 'float32'], ['float64', 'float64'], ['float16', 'float16'], ['bfloat16', 'bfloat16'],
    ['int32', 'int32'], ['int64', 'int64'], ['bool', 'boolean'], ['int8', 'int8'], ['uint8', 'uint8'], ['int16', 'int16']
]);

paddle.parseAttribute = (at, path) => {
    paddle.expect.object(at, path);
    const kind = paddle.typeName(at['#']);
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
            const type = paddle.parseType(data, `${path}.D`);
            return { type: 'type', value: type ? type.toString() : '' };
        }
        case 'a_array': {
            const items = paddle.expect.array(data, `${path}.D`).map((item, index) => paddle.parseAttribute(item, `${path}.D[${index}]`));
            const types = new Set(items.map((item) => item.type));
            const type = types.size === 1 ? `${items[0].type}[]` : 'attribute[]';
            return { type, value: items.map((item) => item.value) };
        }
        default:
            return { type: 'string', value: data === undefined ? kind : JSON.stringify(data) };
    }
};

// Netron's type objects for values: tensors, vectors (t_vec) and types the reader only names.
paddle.TensorType = class {

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

paddle.TensorShape = class {

    constructor(dimensions) {
        this.dimensions = dimensions.map((dim) => Number.isInteger(dim) && dim < 0 ? '?' : dim);
    }

    toString() {
        return this.dimensions.length > 0 ? `[${this.dimensions.join(',')}]` : '';
    }
};

paddle.VectorType = class {

    constructor(types) {
        this.types = types;
        this.dataType = 'vector';
        this.shape = new paddle.TensorShape([types.length]);
        this.denotation = `vector of ${types.length}`;
    }

    toString() {
        return `vector<${this.types.map((type) => type ? type.toString() : '?').join(', ')}>`;
    }
};

paddle.OpaqueType = class {

    constructor(name) {
        this.name = name;
    }

    toString() {
        return this.name;
    }
};

paddle.Error = class extends Error {

    constructor(message) {
        super(message);
        this.name = 'Error loading Paddle PIR model.';
    }
};
