// Weights of a Paddle PIR program: the combined `<name>.pdiparams` stream written by
// paddle.jit.save / save_inference_model, or one file per parameter (separate_parameters=True).
//
// Layout of one tensor (little endian): u32 version, u64 lod_level, lod_level x (u64 bytes,
// data), u32 version, i32 desc_size, VarType.TensorDesc protobuf {1: data_type, 2: dims},
// raw data. The combined file holds the persistable parameters sorted by name.

const DATA_TYPES = new Map([
    [0, ['boolean', 1]], [1, ['int16', 2]], [2, ['int32', 4]], [3, ['int64', 8]],
    [4, ['float16', 2]], [5, ['float32', 4]], [6, ['float64', 8]], [19, ['uint64', 8]],
    [20, ['uint8', 1]], [21, ['int8', 1]], [22, ['bfloat16', 2]], [23, ['complex64', 8]],
    [24, ['complex128', 16]], [32, ['float8e4m3fn', 1]], [33, ['float8e5m2', 1]]
]);

export class Error extends globalThis.Error {
    constructor(message) {
        super(message);
        this.name = 'Error loading Paddle PIR weights.';
    }
}

class Reader {

    constructor(buffer, file) {
        this.buffer = buffer;
        this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
        this.position = 0;
        this.file = file;
    }

    need(size) {
        if (this.position + size > this.buffer.length) {
            throw new Error(`Unexpected end of '${this.file}' at byte ${this.position} (needs ${size} more)`);
        }
    }

    uint32() {
        this.need(4);
        const value = this.view.getUint32(this.position, true);
        this.position += 4;
        return value;
    }

    int32() {
        this.need(4);
        const value = this.view.getInt32(this.position, true);
        this.position += 4;
        return value;
    }

    uint64() {
        this.need(8);
        const value = this.view.getBigUint64(this.position, true);
        this.position += 8;
        if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
            throw new Error(`Invalid size in '${this.file}' at byte ${this.position - 8}`);
        }
        return Number(value);
    }

    bytes(size) {
        this.need(size);
        const value = this.buffer.subarray(this.position, this.position + size);
        this.position += size;
        return value;
    }
}

const varint = (buffer, state) => {
    let result = 0;
    let shift = 1;
    for (;;) {
        if (state.position >= buffer.length) {
            throw new Error('Truncated tensor description');
        }
        const byte = buffer[state.position++];
        result += (byte & 0x7f) * shift;
        if ((byte & 0x80) === 0) {
            return result;
        }
        shift *= 128;
        if (shift > 2 ** 63) {
            throw new Error('Invalid varint in tensor description');
        }
    }
};

// VarType.TensorDesc: field 1 data_type (varint), field 2 dims (repeated int64, packed or not).
const tensorDesc = (buffer) => {
    const state = { position: 0 };
    let dataType = -1;
    const dims = [];
    while (state.position < buffer.length) {
        const key = varint(buffer, state);
        const field = Math.floor(key / 8);
        const wire = key & 7;
        if (field === 1 && wire === 0) {
            dataType = varint(buffer, state);
        } else if (field === 2 && wire === 0) {
            dims.push(varint(buffer, state));
        } else if (field === 2 && wire === 2) {
            const end = varint(buffer, state) + state.position;
            while (state.position < end) {
                dims.push(varint(buffer, state));
            }
        } else if (wire === 0) {
            varint(buffer, state);
        } else if (wire === 2) {
            state.position += varint(buffer, state);
        } else {
            throw new Error(`Unsupported field ${field} in tensor description`);
        }
    }
    return { dataType, dims: dims.map((dim) => dim > 2 ** 62 ? dim - 2 ** 64 : dim) };
};

export const readTensor = (reader) => {
    const version = reader.uint32();
    if (version !== 0) {
        throw new Error(`Unsupported tensor version ${version} in '${reader.file}' at byte ${reader.position - 4}`);
    }
    const lodLevel = reader.uint64();
    if (lodLevel > 16) {
        throw new Error(`Invalid LoD level ${lodLevel} in '${reader.file}'`);
    }
    for (let i = 0; i < lodLevel; i++) {
        reader.bytes(reader.uint64());
    }
    reader.uint32(); // tensor version
    const size = reader.int32();
    if (size < 0) {
        throw new Error(`Invalid tensor description size in '${reader.file}'`);
    }
    const desc = tensorDesc(reader.bytes(size));
    const entry = DATA_TYPES.get(desc.dataType);
    if (!entry) {
        throw new Error(`Unsupported data type ${desc.dataType} in '${reader.file}'`);
    }
    const [dataType, itemSize] = entry;
    const count = desc.dims.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(count) || count < 0) {
        throw new Error(`Invalid tensor shape [${desc.dims}] in '${reader.file}'`);
    }
    const data = reader.bytes(count * itemSize);
    return { dataType, dims: desc.dims, data };
};

class Tensor {
    constructor(type, values, category) {
        this.type = type;
        this.values = values;
        this.encoding = '<';
        this.category = category;
    }
}

class TensorType {
    constructor(dataType, dims) {
        this.dataType = dataType;
        this.shape = new TensorShape(dims);
    }
    toString() {
        return this.dataType + this.shape.toString();
    }
}

class TensorShape {
    constructor(dims) {
        this.dimensions = dims.map((dim) => Number.isInteger(dim) && dim < 0 ? '?' : dim);
    }
    toString() {
        return this.dimensions.length > 0 ? `[${this.dimensions.join(',')}]` : '';
    }
}

class Store {

    constructor() {
        this.entries = new Map(); // parameter name -> {dataType, dims, data}
        this.description = 'not loaded';
    }

    tensor(parameter) {
        const entry = this.entries.get(parameter.name);
        const category = parameter.isParameter ? 'Parameter' : 'Buffer';
        if (entry) {
            return new Tensor(new TensorType(entry.dataType, entry.dims), entry.data, category);
        }
        const type = parameter.value.type;
        return new Tensor(type && type.dataType ? new TensorType(type.dataType, type.shape.dimensions.map((d) => d === '?' ? -1 : d)) : null, null, category);
    }
}

const persistable = (parameter) => {
    if (parameter.persistable !== null) {
        return parameter.persistable;
    }
    // Saved with trainable=False: the flag is gone, only the naming convention is left.
    return !parameter.name.endsWith('_non_persistable');
};

const readStream = async (context, file) => {
    const target = await context.fetch(file);
    const stream = target.stream || target;
    if (!stream || typeof stream.peek !== 'function') {
        throw new Error(`Cannot read '${file}'`);
    }
    const position = stream.position || 0;
    if (stream.seek) {
        stream.seek(0);
    }
    const buffer = stream.peek(stream.length);
    if (stream.seek) {
        stream.seek(position);
    }
    return buffer;
};

export const load = async (context, identifier, parameters) => {
    const store = new Store();
    const wanted = parameters.filter(persistable).map((parameter) => parameter.name);
    if (wanted.length === 0) {
        store.description = 'none';
        return store;
    }
    const sorted = Array.from(new Set(wanted)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const stem = identifier.replace(/\.json$/i, '');
    const combined = `${stem}.pdiparams`;
    let buffer = null;
    if (stem !== '__model__') {
        try {
            buffer = await readStream(context, combined);
        } catch {
            buffer = null;
        }
    }
    if (buffer) {
        const reader = new Reader(buffer, combined);
        for (const name of sorted) {
            if (reader.position >= buffer.length) {
                throw new Error(`'${combined}' holds fewer tensors than the ${sorted.length} persistable parameters of the program`);
            }
            store.entries.set(name, readTensor(reader));
        }
        if (reader.position !== buffer.length) {
            throw new Error(`'${combined}' holds more data than the ${sorted.length} persistable parameters of the program (${buffer.length - reader.position} bytes left)`);
        }
        store.description = `${combined} (${sorted.length} tensors, ${buffer.length} bytes)`;
        return store;
    }
    // separate_parameters=True: one file per parameter, named after it.
    let found = 0;
    for (const name of sorted) {
        let data = null;
        try {
            // eslint-disable-next-line no-await-in-loop
            data = await readStream(context, name);
        } catch {
            data = null;
        }
        if (data) {
            const reader = new Reader(data, name);
            store.entries.set(name, readTensor(reader));
            found++;
        }
    }
    store.description = found > 0 ? `${found} of ${sorted.length} parameter files` : `not found (no '${combined}' or parameter files)`;
    return store;
};
