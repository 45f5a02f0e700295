// Weights of a Paddle PIR program, as the graph sees them: one tensor per parameter whose values
// arrive when the weights file is read. Reading the file (`.pdiparams` or one file per parameter)
// is paddle-pir-pdiparams.js, imported when the weights are first read, after the graph is drawn.

export class Error extends globalThis.Error {
    constructor(message) {
        super(message);
        this.name = 'Error loading Paddle PIR weights.';
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

// What the program says a parameter is: data type and dims (-1 for a dynamic dimension).
const declared = (parameter) => {
    const type = parameter.value.type;
    if (!type || !type.dataType || !type.shape || !Array.isArray(type.shape.dimensions)) {
        return null;
    }
    return { dataType: type.dataType, dims: type.shape.dimensions.map((dim) => dim === '?' ? -1 : dim) };
};

class Store {

    constructor() {
        this.entries = new Map(); // parameter name -> {dataType, dims, data}
        this.problems = new Map(); // parameter name -> why its values are not shown
        this.problem = null; // why no values are shown at all
        this.description = 'not loaded';
    }

    unavailable(reason) {
        this.entries.clear();
        this.problem = reason;
        this.description = `unavailable: ${reason}`;
    }

    // Why the values of `parameter` are not shown, or null.
    reason(parameter) {
        if (this.entries.has(parameter.name)) {
            return null;
        }
        return this.problems.get(parameter.name) || this.problem;
    }
}

const persistable = (parameter) => {
    if (parameter.persistable !== null) {
        return parameter.persistable;
    }
    // Saved with trainable=False: the flag is gone, only the naming convention is left.
    return !parameter.name.endsWith('_non_persistable');
};

// The weights of a program, read lazily: the graph is built without them, every parameter gets a
// tensor whose values arrive when `read()` is called (by Netron when a tensor is shown, or in the
// background once the graph is drawn). The tensors follow Netron's contract for deferred data:
// `peek()` says whether the values are there, `read()` loads them. When the file has been read,
// each tensor and its value get the stored type and values or the reason they are missing, and
// the model property says what was found.
export class Weights {

    constructor(context, identifier, parameters) {
        this._context = context;
        this._identifier = identifier;
        this._parameters = parameters;
        this._attached = []; // [parameter, tensor, value]
        this._promise = null;
        this.store = null;
        const stem = identifier.replace(/\.json$/i, '');
        const stored = parameters.filter(persistable).length;
        this.property = null; // the model property 'weights', updated when the file is read
        this._pending = stored === 0 ? null : `not read yet: read in the background once the graph is drawn, or when a weight is shown (${stem === '__model__' ? 'parameter files' : `'${stem}.pdiparams'`})`;
    }

    get description() {
        if (this.store) {
            return this.store.description;
        }
        return this._pending || 'none';
    }

    // A tensor for `parameter` whose values come with read(); `value` is the graph value that
    // shows it (its description gets the reason when the values turn out to be unavailable).
    tensor(parameter, value) {
        const want = declared(parameter);
        const category = parameter.isParameter ? 'Parameter' : 'Buffer';
        const tensor = new LazyTensor(want ? new TensorType(want.dataType, want.dims) : null, category, this);
        if (this._pending === null) {
            tensor._done = true; // nothing is stored: there is nothing to read
        }
        this._attached.push([parameter, tensor, value]);
        return tensor;
    }

    get loaded() {
        return this.store !== null || this._pending === null;
    }

    read() {
        if (!this._promise) {
            const unexpected = (error) => {
                const store = new Store();
                store.unavailable((error && error.message ? error.message : String(error)).replace(/\.$/, ''));
                return store;
            };
            const stored = this._parameters.filter(persistable).map((parameter) => ({ name: parameter.name, declared: declared(parameter) }));
            // The file format is read by a module of its own, imported now: drawing the graph
            // does not need it, so it is not compiled before the first draw.
            const file = import('./paddle-pir-pdiparams.js');
            this._promise = file.then((pdiparams) => pdiparams.load(this._context, this._identifier, stored, new Store())).catch(unexpected).then((store) => {
                this.store = store;
                for (const [parameter, tensor, value] of this._attached) {
                    const entry = store.entries.get(parameter.name);
                    if (entry) {
                        tensor.type = new TensorType(entry.dataType, entry.dims);
                        tensor.values = entry.data;
                    } else {
                        const reason = store.reason(parameter);
                        if (reason) {
                            tensor.description = `values unavailable: ${reason}`;
                            if (value) {
                                value.description = tensor.description;
                            }
                        }
                    }
                    tensor._done = true;
                }
                if (this.property) {
                    this.property.value = store.description;
                }
                return this;
            });
        }
        return this._promise;
    }
}

class LazyTensor {
    constructor(type, category, weights) {
        this.type = type;
        this.values = null;
        this.encoding = '<';
        this.category = category;
        this._weights = weights;
        this._done = false;
    }
    peek() {
        return this._done;
    }
    async read() {
        if (!this._done) {
            await this._weights.read();
        }
    }
}
