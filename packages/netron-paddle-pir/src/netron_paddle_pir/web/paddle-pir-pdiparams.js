// The `.pdiparams` file format: the combined stream written by paddle.jit.save /
// save_inference_model, or one file per parameter (separate_parameters=True).
//
// Layout of one tensor (little endian): u32 version, u64 lod_level, lod_level x (u64 bytes,
// data), u32 version, i32 desc_size, VarType.TensorDesc protobuf {1: data_type, 2: dims},
// raw data. The combined file holds the persistable parameters sorted by name.
//
// Only needed once the weights are read (after the graph is drawn, or when a tensor is shown):
// paddle-pir-weights.js imports this module then, so it is not compiled before the first draw.
// It imports nothing, so that the same file serves the bundled reader and the plain modules.

const DATA_TYPES = new Map([
    [0, ['boolean', 1]], [1, ['int16', 2]], [2, ['int32', 4]], [3, ['int64', 8]],
    [4, ['float16', 2]], [5, ['float32', 4]], [6, ['float64', 8]], [19, ['uint64', 8]],
    [20, ['uint8', 1]], [21, ['int8', 1]], [22, ['bfloat16', 2]], [23, ['complex64', 8]],
    [24, ['complex128', 16]], [32, ['float8e4m3fn', 1]], [33, ['float8e5m2', 1]]
]);

class Error extends globalThis.Error {
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

// Why a stored tensor cannot be the parameter the program declares, or null when it fits.
const mismatch = (parameter, entry, file) => {
    const want = parameter.declared;
    if (!want) {
        return null;
    }
    const dims = (values) => `[${values.join(',')}]`;
    const fits = want.dims.length === entry.dims.length && want.dims.every((dim, index) => dim < 0 || dim === entry.dims[index]);
    if (!fits) {
        return `shape ${dims(want.dims)} in the program, ${dims(entry.dims)} in '${file}'`;
    }
    if (want.dataType !== entry.dataType) {
        return `data type ${want.dataType} in the program, ${entry.dataType} in '${file}'`;
    }
    return null;
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

const message = (error) => (error && error.message ? error.message : String(error)).replace(/\.$/, '');

// Reads the weights of the persistable parameters `stored` ({name, declared}: what the program
// says of each) into `store` (paddle-pir-weights.js, Store). A damaged, foreign or mismatched
// weights file never stops the graph from opening: the store then says why values are missing,
// per parameter or for all.
export const load = async (context, identifier, stored, store) => {
    if (stored.length === 0) {
        store.description = 'none';
        return store;
    }
    const byName = new Map(stored.map((parameter) => [parameter.name, parameter]));
    // A tensor that matches its parameter's declared shape and type is kept; else why it is not.
    const keep = (name, entry, file) => {
        const problem = mismatch(byName.get(name), entry, file);
        if (problem) {
            store.problems.set(name, problem);
        } else {
            store.entries.set(name, entry);
        }
    };
    const sorted = Array.from(byName.keys()).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
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
        try {
            const reader = new Reader(buffer, combined);
            const entries = new Map();
            for (const name of sorted) {
                if (reader.position >= buffer.length) {
                    throw new Error(`'${combined}' holds fewer tensors than the ${sorted.length} persistable parameters of the program (${entries.size})`);
                }
                entries.set(name, readTensor(reader));
            }
            if (reader.position !== buffer.length) {
                throw new Error(`'${combined}' holds more data than the ${sorted.length} persistable parameters of the program (${buffer.length - reader.position} bytes left)`);
            }
            for (const [name, entry] of entries) {
                keep(name, entry, combined);
            }
        } catch (error) {
            store.unavailable(message(error));
            return store;
        }
        const shown = store.entries.size;
        store.description = shown === sorted.length ?
            `${combined} (${sorted.length} tensors, ${buffer.length} bytes)` :
            `${combined}: ${sorted.length - shown} of ${sorted.length} tensors do not match the program (${store.problems.values().next().value})`;
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
            found++;
            try {
                const reader = new Reader(data, name);
                const entry = readTensor(reader);
                if (reader.position !== data.length) {
                    throw new Error(`'${name}' holds ${data.length - reader.position} bytes after its tensor`);
                }
                keep(name, entry, name);
            } catch (error) {
                store.problems.set(name, message(error));
            }
        } else {
            store.problems.set(name, stem === '__model__' ? `no parameter file '${name}'` : `no '${combined}' and no parameter file '${name}'`);
        }
    }
    if (found === 0) {
        store.unavailable(`not found (no '${combined}' or parameter files)`);
        store.description = `not found (no '${combined}' or parameter files)`;
    } else if (store.problems.size > 0) {
        store.description = `${store.entries.size} of ${sorted.length} parameter files read (${store.problems.values().next().value})`;
    } else {
        store.description = `${found} of ${sorted.length} parameter files`;
    }
    return store;
};
