// Op catalog for the Paddle PIR reader: operand/result names (from the generated signature
// table), documentation (generated from Paddle's docstrings, pir-metadata.json), categories,
// and region labels of control flow.

const BUILTIN = {
    'builtin.combine': { inputs: [], outputs: ['out'] },
    'builtin.split': { inputs: ['x'], outputs: [] },
    'builtin.slice': { inputs: ['x'], outputs: ['out'] },
    'builtin.shadow_output': { inputs: ['x'], outputs: [] },
    'builtin.constant': { inputs: [], outputs: ['out'] },
    'cf.yield': { inputs: [], outputs: [] },
    'cf.tuple_push': { inputs: ['stack', 'values'], outputs: [] },
    'cf.tuple_pop': { inputs: ['outlet'], outputs: [] },
    'cf.stack_create': { inputs: [], outputs: ['stack', 'inlet', 'outlet'] },
    'pd_op.if': { inputs: ['cond'], outputs: [] },
    'pd_op.while': { inputs: ['cond'], outputs: [] },
    'pd_op.pylayer': { inputs: [], outputs: [] }
};

const CATEGORIES = [
    ['Layer', ['conv2d', 'conv3d', 'conv1d', 'depthwise_conv2d', 'conv2d_transpose', 'conv3d_transpose', 'depthwise_conv2d_transpose', 'matmul', 'linear', 'fc', 'embedding', 'rnn', 'lstm', 'gru', 'bmm', 'einsum', 'fused_gemm_epilogue', 'multihead_matmul']],
    ['Activation', ['relu', 'relu6', 'gelu', 'silu', 'swish', 'sigmoid', 'tanh', 'softmax', 'log_softmax', 'hardswish', 'hardsigmoid', 'leaky_relu', 'elu', 'selu', 'mish', 'softplus', 'prelu', 'swiglu', 'logsigmoid']],
    ['Normalization', ['batch_norm', 'layer_norm', 'group_norm', 'instance_norm', 'rms_norm', 'sync_batch_norm', 'fused_bn_add_activation', 'p_norm', 'norm']],
    ['Pool', ['pool2d', 'pool3d', 'max_pool2d_with_index', 'max_pool3d_with_index', 'adaptive_avg_pool2d', 'lp_pool2d', 'unpool']],
    ['Dropout', ['dropout']],
    ['Shape', ['reshape', 'flatten', 'squeeze', 'unsqueeze', 'transpose', 'shape', 'shape64', 'expand', 'expand_as', 'tile', 'broadcast_to', 'view_shape']],
    ['Tensor', ['concat', 'split', 'split_with_num', 'stack', 'unstack', 'slice', 'strided_slice', 'gather', 'gather_nd', 'scatter', 'scatter_nd_add', 'index_select', 'cast', 'assign', 'full', 'full_int_array', 'full_like', 'full_with_tensor', 'arange', 'zeros_like', 'ones_like', 'where', 'combine', 'set_value', 'set_value_with_tensor', 'pad', 'pad3d', 'roll', 'flip']],
    ['Transform', ['interpolate', 'nearest_interp', 'bilinear_interp', 'bicubic_interp', 'linear_interp', 'trilinear_interp', 'pixel_shuffle', 'grid_sample', 'affine_grid']],
    ['Control', ['if', 'while', 'pylayer', 'yield', 'select_input', 'select_output', 'assert']],
    ['Data', ['data', 'feed', 'fetch', 'parameter', 'shadow_output']],
    ['Attention', ['flash_attn', 'flash_attn_unpadded', 'memory_efficient_attention', 'fused_multi_head_attention', 'scaled_dot_product_attention', 'variable_length_memory_efficient_attention']],
    ['Quantization', ['quantize_linear', 'dequantize_linear', 'fake_quantize_abs_max', 'fake_dequantize_max_abs', 'weight_quantize', 'weight_only_linear', 'llm_int8_linear']]
];

// For ops without a documented Python API function (builtin, control flow, a few pd_op ops).
const DESCRIPTIONS = {
    conv2d: '2-D convolution of `input` (NCHW or NHWC) with `filter` [out_channels, in_channels/groups, kh, kw].',
    depthwise_conv2d: 'Depthwise 2-D convolution: one filter per input channel (groups = channels).',
    conv2d_transpose: 'Transposed 2-D convolution (deconvolution) of `x` with `filter`.',
    matmul: 'Matrix product of `x` and `y`, optionally transposing either; broadcasts batch dimensions.',
    add: 'Element-wise sum `x + y` with broadcasting.',
    subtract: 'Element-wise difference `x - y` with broadcasting.',
    multiply: 'Element-wise product `x * y` with broadcasting.',
    divide: 'Element-wise quotient `x / y` with broadcasting.',
    scale: 'Computes `scale * x + bias` (or `scale * (x + bias)` when bias_after_scale is false).',
    batch_norm: 'Batch normalization with running `mean`/`variance`, learned `scale` and `bias`.',
    layer_norm: 'Layer normalization over the dimensions from `begin_norm_axis`, with `scale` and `bias`.',
    group_norm: 'Group normalization over channel groups, with `scale` and `bias`.',
    relu: 'Rectified linear unit: `max(x, 0)`.',
    gelu: 'Gaussian error linear unit (exact or tanh approximation).',
    sigmoid: 'Logistic sigmoid `1 / (1 + exp(-x))`.',
    softmax: 'Softmax along `axis`.',
    hardswish: 'Hard swish: `x * relu6(x + 3) / 6`.',
    hardsigmoid: 'Hard sigmoid: `clip(slope * x + offset, 0, 1)`.',
    pool2d: '2-D pooling (max or avg) of `x`; `kernel_size` may be a tensor.',
    dropout: 'Dropout; identity (or scaling) at inference.',
    reshape: 'Reshapes `x` to `shape` (0 keeps a dimension, -1 infers it).',
    flatten: 'Flattens the dimensions from `start_axis` to `stop_axis` into one.',
    transpose: 'Permutes the dimensions of `x` by `perm`.',
    concat: 'Joins the tensors of `x` along `axis`.',
    split: 'Splits `x` into parts along `axis`.',
    stack: 'Stacks the tensors of `x` along a new `axis`.',
    slice: 'Takes `input[starts:ends]` along `axes`.',
    cast: 'Converts `x` to `dtype`.',
    full: 'A tensor of `shape` filled with `value`.',
    full_int_array: 'A 1-D integer tensor holding `value` (usually a shape or axes).',
    embedding: 'Looks up rows of `weight` for the indices in `x`.',
    rnn: 'Multi-layer RNN / LSTM / GRU (`mode`) over `x` with initial states `pre_state` and weights `weight_list`.',
    mean: 'Mean of `x` over `axis`.',
    sum: 'Sum of `x` over `axis`.',
    if: 'Runs the `then` region when `cond` is true, else the `else` region; yields the results.',
    while: 'Runs the `body` region while `cond` holds; block arguments carry the loop variables.',
    pylayer: 'Custom forward region of a PyLayer.',
    combine: 'Packs values into a vector (a list-valued input).',
    split_: 'Unpacks a vector into values.',
    yield: 'Returns values from a region to its parent op.',
    data: 'Graph input.',
    fetch: 'Graph output.',
    interpolate: 'Resizes `x` (nearest, bilinear, bicubic ...).',
    nearest_interp: 'Nearest-neighbour resize of `x`.',
    bilinear_interp: 'Bilinear resize of `x`.',
    argmax: 'Index of the maximum along `axis`.',
    shape64: 'The shape of `input` as an int64 tensor.',
    shape: 'The shape of `input` as an int32 tensor.',
    unsqueeze: 'Inserts dimensions of size 1 at `axis`.',
    squeeze: 'Removes dimensions of size 1 at `axis`.'
};

// Op name (without dialect) -> category, made once for every catalog.
const CATEGORY = new Map(CATEGORIES.flatMap(([category, names]) => names.map((name) => [name, category])));

export class Catalog {

    constructor(table, metadata) {
        this._ops = table && table.ops && typeof table.ops === 'object' ? table.ops : {};
        this._docs = new Map();
        this._version = '?';
        this._categories = CATEGORY;
        this._types = new Map();
        if (metadata) {
            this.document(metadata);
        }
    }

    // Installs the documentation table (pir-metadata.json). Netron reads a type's description,
    // inputs and attributes only when its sidebar opens, so the table may arrive after the graph
    // is drawn: the types made so far are filled in, later ones are made with it.
    document(metadata) {
        if (!metadata || !Array.isArray(metadata.ops)) {
            return;
        }
        this._version = metadata.paddle_version ? metadata.paddle_version : '?';
        for (const entry of metadata.ops) {
            if (entry && typeof entry.name === 'string') {
                this._docs.set(entry.name, entry);
            }
        }
        for (const type of this._types.values()) {
            this._describe(type);
        }
    }

    signature(type) {
        if (BUILTIN[type]) {
            return BUILTIN[type];
        }
        if (type.startsWith('pd_op.') || type.startsWith('onednn_op.')) {
            const name = type.substring(type.indexOf('.') + 1);
            const entry = this._ops[name] || (name.endsWith('_') ? this._ops[name.slice(0, -1)] : null);
            if (entry && Array.isArray(entry.inputs) && Array.isArray(entry.outputs)) {
                return entry;
            }
        }
        return null;
    }

    type(identifier) {
        if (!this._types.has(identifier)) {
            const short = identifier.substring(identifier.indexOf('.') + 1);
            const base = short.endsWith('_') && !short.endsWith('__') ? short.slice(0, -1) : short;
            const type = { name: short, identifier };
            const category = this._categories.get(base);
            if (category) {
                type.category = category;
            }
            this._describe(type);
            this._types.set(identifier, type);
        }
        return this._types.get(identifier);
    }

    _describe(type) {
        const identifier = type.identifier;
        const short = identifier.substring(identifier.indexOf('.') + 1);
        const base = short.endsWith('_') && !short.endsWith('__') ? short.slice(0, -1) : short;
        const doc = identifier.startsWith('pd_op.') ? this._docs.get(short) || this._docs.get(base) : null;
        if (doc) {
            type.description = `${doc.description}${base === short ? '' : ' (In place.)'}\n\nFrom the docstring of \`${doc.source}\` (Paddle ${this._version}).`;
            for (const key of ['inputs', 'outputs', 'attributes']) {
                if (Array.isArray(doc[key])) {
                    type[key] = doc[key];
                }
            }
        } else if (DESCRIPTIONS[base]) {
            type.description = base === short ? DESCRIPTIONS[base] : `${DESCRIPTIONS[base]} In place.`;
        }
    }

    regionLabels(type, count) {
        if (type === 'pd_op.if' && count === 2) {
            return ['then', 'else'];
        }
        if (type === 'pd_op.while' && count === 1) {
            return ['body'];
        }
        if (type === 'pd_op.pylayer') {
            return Array.from({ length: count }, (_, i) => i === 0 ? 'forward' : `region_${i}`);
        }
        return Array.from({ length: count }, (_, i) => `region_${i}`);
    }
}
