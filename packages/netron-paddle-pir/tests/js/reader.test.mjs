// Reader tests over the generated corpus, against expectations computed in Python
// (tests/expectations.py) from the JSON, from Paddle's own op names and from the weights that
// Paddle held in memory. Run by tests/test_node.py with PIR_CORPUS set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as url from 'node:url';
import { open, leaves, countNodes } from './context.mjs';

const here = path.dirname(url.fileURLToPath(import.meta.url));
const corpus = process.env.PIR_CORPUS;
// The corpus file: what the test session builds ('ci' entries) and what must be true of each.
const models = JSON.parse(fs.readFileSync(path.join(here, '..', 'models.json'), 'utf-8')).filter((entry) => entry.tags.includes('ci'));
const expectations = corpus ? JSON.parse(fs.readFileSync(path.join(corpus, 'expectations.json'), 'utf-8')) : {};

const decode = (tensor) => {
    const data = tensor.values;
    const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    switch (tensor.type.dataType) {
        case 'float32': return Array.from(new Float32Array(buffer));
        case 'float64': return Array.from(new Float64Array(buffer));
        case 'int32': return Array.from(new Int32Array(buffer));
        case 'int64': return Array.from(new BigInt64Array(buffer), Number);
        default: throw new Error(`test cannot decode ${tensor.type.dataType}`);
    }
};

// Describe where a value comes from, in the terms of expectations.py.
const sources = (graph) => {
    const map = new Map();
    for (const argument of graph.inputs) {
        for (const value of argument.value) {
            map.set(value, ['input', argument.name]);
        }
    }
    leaves(graph).forEach((node, index) => {
        node.outputs.forEach((argument, k) => {
            for (const value of argument.value) {
                map.set(value, ['node', index, k]);
            }
        });
    });
    return (value) => {
        if (value.initializer && value.initializer.category === 'Constant') {
            return ['const', value.name, value.initializer.type.shape.dimensions.reduce((a, b) => a * b, 1)];
        }
        return value.initializer ? ['param', value.name] : map.get(value) || ['other', value.name];
    };
};


const initializers = (graph, found = new Map()) => {
    for (const node of leaves(graph)) {
        for (const argument of node.inputs) {
            for (const value of argument.value) {
                if (value.initializer && value.initializer.category !== 'Constant') {
                    found.set(value.name, value.initializer);
                }
            }
        }
        for (const block of node.blocks) {
            initializers(block.value, found);
        }
    }
    return found;
};

for (const entry of models) {
    const expected = expectations[entry.target];
    test(entry.target, { skip: expected ? false : 'not in the generated corpus' }, async (t) => {
        const file = path.join(corpus, entry.target);
        const { model, context } = await open(file);
        assert.ok(model, 'reader must match the file');
        assert.equal(model.format, entry.format);
        const graph = model.modules[0];

        await t.test('inputs and outputs', () => {
            assert.deepEqual(graph.inputs.map((a) => a.name), expected.inputs);
            const of = sources(graph);
            const outputs = graph.outputs.map((a) => typeof expected.outputs[0] === 'string' ? a.name : of(a.value[0]));
            assert.deepEqual(outputs, expected.outputs);
        });

        await t.test('what the corpus file says of the model', () => {
            const want = entry.expect || {};
            if (want.nodes) {
                const count = countNodes(graph);
                assert.ok(count >= want.nodes[0] && count <= want.nodes[1], `${count} nodes, the corpus file says ${want.nodes[0]}-${want.nodes[1]}`);
            }
            if (want.ops_at_least) {
                const doc = JSON.parse(fs.readFileSync(path.join(corpus, entry.target), 'utf-8'));
                let ops = 0;
                const walk = (block) => {
                    for (const op of block.ops) {
                        ops += op['#'] === 'p' ? 0 : 1;
                        for (const region of op.regions || []) {
                            region.blocks.forEach(walk);
                        }
                    }
                };
                walk(doc.program.regions[0].blocks[0]);
                assert.ok(ops >= want.ops_at_least, `${ops} ops in the file, the corpus file says at least ${want.ops_at_least}`);
            }
            if (want.regions !== undefined) {
                assert.equal(leaves(graph).filter((node) => node.blocks.length > 0).length, want.regions, 'nodes with regions');
            }
        });

        await t.test('nodes, edges and named operands', () => {
            assert.equal(leaves(graph).length, expected.nodes.length, 'op nodes of the main graph, modules expanded');
            assert.equal(graph.nodes.length, expected.top_nodes, 'nodes of the first view (module nodes and ops outside modules)');
            assert.equal(countNodes(graph), expected.total_nodes, 'node count including regions');
            const of = sources(graph);
            leaves(graph).forEach((node, index) => {
                const want = expected.nodes[index];
                const where = `node ${index} (${want.type})`;
                assert.equal(node.type.identifier, want.type, where);
                const operands = node.inputs.filter((a) => a.name !== 'captured');
                assert.equal(operands.length, want.inputs.length, `${where}: operand count (absent optional operands hidden)`);
                operands.forEach((argument, k) => {
                    if (want.inputs[k].slot !== null) {
                        assert.equal(argument.name, want.inputs[k].slot, `${where}: operand ${k} name`);
                    }
                    assert.deepEqual(argument.value.map(of), want.inputs[k].values, `${where}: operand ${k} sources`);
                });
                const captured = node.inputs.find((a) => a.name === 'captured');
                const got = captured ? captured.value.map(of) : [];
                // Captured values defined in enclosing regions are 'other' on both sides.
                assert.deepEqual(got.map((s) => s[0]), want.captures.map((s) => s[0]), `${where}: captures`);
                if (want.outputs) {
                    assert.deepEqual(node.outputs.map((a) => a.name), want.outputs, `${where}: result names`);
                }
                assert.deepEqual(node.blocks.map(() => 1), want.regions.flatMap((n) => Array(n).fill(1)), `${where}: regions`);
                assert.equal(node.name.includes('/') ? node.name.substring(0, node.name.lastIndexOf('/')) : null, want.struct_name, `${where}: module path in the name`);
            });
        });

        await t.test('weights match what Paddle held in memory', () => {
            const found = initializers(graph);
            assert.deepEqual(Array.from(found.keys()).sort(), expected.parameters, 'every parameter is folded into a consumer');
            for (const ref of expected.weights) {
                const tensor = found.get(ref.name);
                assert.ok(tensor, `parameter ${ref.name} is shown`);
                if (ref.name.endsWith('_non_persistable') || entry.weights === 'none') {
                    assert.equal(tensor.values, null, `${ref.name} is not saved`);
                    continue;
                }
                assert.ok(tensor.values, `${ref.name} has values`);
                assert.deepEqual(tensor.type.shape.dimensions, ref.shape, `${ref.name} shape`);
                const values = decode(tensor);
                ref.first.forEach((v, i) => assert.ok(Math.abs(values[i] - v) <= 1e-6 * Math.max(1, Math.abs(v)), `${ref.name}[${i}] = ${values[i]}, Paddle has ${v} (tolerance 1e-6)`));
                const sum = values.reduce((a, b) => a + b, 0);
                assert.ok(Math.abs(sum - ref.sum) <= 1e-4 * Math.max(1, Math.abs(ref.sum)), `${ref.name} sum ${sum}, Paddle has ${ref.sum} (relative tolerance 1e-4)`);
            }
            if (entry.weights === 'separate') {
                assert.ok(!context.fetched.includes('model.pdiparams') || context.fetched.length > 1);
            }
        });

        await t.test('model properties', () => {
            const props = Object.fromEntries(model.metadata.map((m) => [m.name, m.value]));
            assert.equal(props.trainable, expected.trainable);
            assert.equal(props.parameters, expected.parameters.length);
            assert.match(props.signatures, /^from Paddle \d+\.\d+/);
        });
    });
}

test('model.pdiparams opened directly shows the program beside it', { skip: expectations['cnn_bn/model.json'] ? false : 'corpus missing' }, async () => {
    const { model, context } = await open(path.join(corpus, 'cnn_bn', 'model.pdiparams'));
    assert.ok(model, 'the reader takes .pdiparams when <stem>.json is a PIR program');
    assert.deepEqual(context.fetched.slice(0, 1), ['model.json']);
    assert.equal(leaves(model.modules[0]).length, expectations['cnn_bn/model.json'].nodes.length);
    assert.equal(initializers(model.modules[0]).size, expectations['cnn_bn/model.json'].parameters.length);
});

test('a .pdiparams without a PIR program is left to Netron', { skip: corpus ? false : 'corpus missing' }, async () => {
    const { Context } = await import('./context.mjs');
    const reader = await import(path.join(here, '..', '..', 'src', 'netron_paddle_pir', 'web', 'paddle-pir.js'));
    const folder = path.join(corpus, 'static_separate');
    const file = path.join(folder, fs.readdirSync(folder).find((name) => !name.endsWith('.json')));
    const context = new Context(path.join(corpus, 'cnn_bn', 'model.pdiparams'), new Map([['model.json', fs.readFileSync(file)]]));
    assert.equal(await new reader.ModelFactory().match(context), null);
});

test('t_vec values are typed as vectors of their element types', { skip: expectations['lstm/model.json'] ? false : 'corpus missing' }, async () => {
    let checked = 0;
    for (const entry of models.filter((m) => expectations[m.target])) {
        const file = path.join(corpus, entry.target);
        const doc = JSON.parse(fs.readFileSync(file, 'utf-8'));
        const vectors = new Map();
        for (const op of doc.program.regions[0].blocks[0].ops) {
            for (const result of Array.isArray(op.O) ? op.O : []) {
                if (result.TT && result.TT['#'] === '0.t_vec') {
                    vectors.set(`%${result['%']}`, result.TT.D.length);
                }
            }
        }
        if (vectors.size === 0) {
            continue;
        }
        // eslint-disable-next-line no-await-in-loop
        const { model } = await open(file);
        for (const node of leaves(model.modules[0])) {
            for (const argument of node.outputs) {
                for (const value of argument.value) {
                    if (vectors.has(value.name)) {
                        const text = String(value.type);
                        assert.match(text, /^vector<.*>$/, `${entry.target} ${value.name}`);
                        assert.equal(value.type.types.length, vectors.get(value.name));
                        checked++;
                    }
                }
            }
        }
    }
    assert.ok(checked > 0, 'the corpus has vector results drawn as edges');
});

const mutated = async (target, change) => {
    const file = path.join(corpus, target);
    const doc = JSON.parse(fs.readFileSync(file, 'utf-8'));
    change(doc);
    return open(file, new Map([[path.basename(file), Buffer.from(JSON.stringify(doc))]]));
};

test('ops unknown to the signature table fall back to positional names', { skip: expectations['mlp/model.json'] ? false : 'corpus missing' }, async () => {
    const { model } = await mutated('mlp/model.json', (doc) => {
        const ops = doc.program.regions[0].blocks[0].ops;
        const relu = ops.find((op) => op['#'] === '1.relu');
        relu['#'] = '3.my_custom_relu'; // custom_op dialect
        const matmul = ops.find((op) => op['#'] === '1.matmul');
        matmul['#'] = 'my_dialect.fused_thing';
    });
    const nodes = leaves(model.modules[0]);
    const custom = nodes.find((node) => node.type.identifier === 'custom_op.my_custom_relu');
    assert.deepEqual(custom.inputs.map((a) => a.name), ['input_0']);
    assert.deepEqual(custom.outputs.map((a) => a.name), ['out_0']);
    const other = nodes.find((node) => node.type.identifier === 'my_dialect.fused_thing');
    assert.deepEqual(other.inputs.map((a) => a.name), ['input_0', 'input_1']);
    assert.ok(other.inputs[1].value[0].initializer, 'the parameter is still folded');
});

test('malformed files give readable errors naming the file and the JSON path', { skip: expectations['mlp/model.json'] ? false : 'corpus missing' }, async () => {
    const cases = [
        [(doc) => { doc.base_code.magic = 'xyz'; }, /Invalid PIR magic '"xyz"' \(expected "pir"\) in 'model\.json'\./],
        [(doc) => { doc.base_code.version = 'four'; }, /Invalid PIR version '"four"' in 'model\.json'\./],
        [(doc) => { doc.program.regions = []; }, /Missing 'program\.regions' in 'model\.json'\./],
        [(doc) => { doc.program.regions[0].blocks[0].ops[5].I = 7; }, /Expected a list at 'program\.regions\[0\]\.blocks\[0\]\.ops\[5\]\.I' in 'model\.json'\./],
        [(doc) => { doc.program.regions[0].blocks[0].ops[5].I[0]['%'] = 999; }, /undefined value %999 in 'model\.json'\./],
        [(doc) => { doc.program.regions[0].blocks[0].ops[0].A[3] = 5; }, /Expected a string at 'program\.regions\[0\]\.blocks\[0\]\.ops\[0\]\.A\[3\]' in 'model\.json'\./]
    ];
    for (const [change, message] of cases) {
        await assert.rejects(mutated('mlp/model.json', change), (error) => {
            assert.equal(error.name, 'Error loading Paddle PIR model.');
            assert.match(error.message, message);
            return true;
        });
    }
});

const weightProblems = (model) => {
    const props = Object.fromEntries(model.metadata.map((m) => [m.name, m.value]));
    const found = initializers(model.modules[0]);
    return { props, found };
};

// Every parameter value of the first graph, by name, as the consumers see it.
const parameterValues = (graph) => {
    const found = new Map();
    for (const node of leaves(graph)) {
        for (const argument of node.inputs) {
            for (const value of argument.value) {
                if (value.initializer && value.initializer.category !== 'Constant') {
                    found.set(value.name, value);
                }
            }
        }
    }
    return found;
};

// open() returns before the weights file is asked for: the graph is drawn first. Each parameter's
// tensor follows Netron's contract for deferred data (peek() false until read()); Netron's
// sidebar and its test harness call read() before showing values. Damage is reported at that
// moment, on the value and in the model properties.
test('weights are read after open() returns, or when a tensor is read', { skip: expectations['mlp/model.json'] ? false : 'corpus missing' }, async () => {
    const { Context } = await import('./context.mjs');
    const reader = await import(path.join(here, '..', '..', 'src', 'netron_paddle_pir', 'web', 'paddle-pir.js'));
    const file = path.join(corpus, 'mlp', 'model.json');
    const params = fs.readFileSync(path.join(corpus, 'mlp', 'model.pdiparams'));
    for (const [data, damaged] of [[params, false], [params.subarray(0, 100), true]]) {
        const context = new Context(file, new Map([['model.pdiparams', data]]));
        const factory = new reader.ModelFactory();
        assert.equal(await factory.match(context), 'paddle.pir');
        // eslint-disable-next-line no-await-in-loop
        const model = await factory.open(context);
        assert.deepEqual(context.fetched, [], 'nothing is fetched before the graph is returned');
        const props = () => Object.fromEntries(model.metadata.map((m) => [m.name, m.value]));
        assert.match(props().weights, /^not read yet: .*'model\.pdiparams'/);
        const values = Array.from(parameterValues(model.modules[0]).values());
        assert.equal(values.length, expectations['mlp/model.json'].parameters.length);
        for (const value of values) {
            assert.equal(value.initializer.peek(), false, `${value.name}: not read yet`);
            assert.equal(value.initializer.values, null);
            assert.equal(value.description, undefined);
            assert.ok(value.initializer.type.shape.dimensions.length > 0, 'the declared type is there before the values');
        }
        // What Netron does when a tensor is shown.
        // eslint-disable-next-line no-await-in-loop
        await values[0].initializer.read();
        assert.deepEqual(context.fetched, ['model.pdiparams'], 'the weights file is read once');
        for (const value of values) {
            assert.equal(value.initializer.peek(), true, `${value.name}: read with the first`);
            if (damaged) {
                assert.equal(value.initializer.values, null);
                assert.match(value.description, /^values unavailable: Unexpected end of 'model\.pdiparams'/);
            } else {
                assert.ok(value.initializer.values.length > 0, `${value.name} has values`);
                assert.equal(value.description, undefined);
            }
        }
        assert.match(props().weights, damaged ? /^unavailable: Unexpected end/ : /^model\.pdiparams \(4 tensors, \d+ bytes\)$/);
        // eslint-disable-next-line no-await-in-loop
        await context.value.weights; // the background read finds it done
        assert.deepEqual(context.fetched, ['model.pdiparams']);
    }
});

test('a damaged or foreign .pdiparams leaves the graph open and says why values are missing', { skip: expectations['mlp/model.json'] ? false : 'corpus missing' }, async () => {
    const file = path.join(corpus, 'mlp', 'model.json');
    const params = fs.readFileSync(path.join(corpus, 'mlp', 'model.pdiparams'));
    const want = expectations['mlp/model.json'];
    const cases = [
        [params.subarray(0, 100), /^unavailable: Unexpected end of 'model\.pdiparams' at byte \d+/],
        [Buffer.concat([params, params.subarray(0, 10)]), /^unavailable: 'model\.pdiparams' holds more data than the 4 persistable parameters/],
        [Buffer.from('PK\u0003\u0004 not a tensor stream at all'), /^unavailable: Unsupported tensor version \d+ in 'model\.pdiparams' at byte 0/],
        [Buffer.alloc(0), /^not found|^unavailable/]
    ];
    for (const [data, reason] of cases) {
        // eslint-disable-next-line no-await-in-loop
        const { model } = await open(file, new Map([['model.pdiparams', data]]));
        assert.ok(model, 'the graph opens');
        const graph = model.modules[0];
        assert.equal(leaves(graph).length, want.nodes.length, 'every node is drawn');
        const { props } = weightProblems(model);
        assert.match(props.weights, reason);
        const values = parameterValues(graph);
        assert.equal(values.size, want.parameters.length, 'parameters are still folded into their consumers');
        for (const value of values.values()) {
            assert.equal(value.initializer.values, null, `${value.name} shows no values`);
            if (data.length > 0) {
                assert.match(value.description, /^values unavailable: /, `${value.name} says why`);
                assert.equal(value.initializer.description, value.description);
            }
            assert.ok(value.initializer.type && value.initializer.type.shape, `${value.name} keeps the declared type`);
        }
    }
});

test('a weight whose program shape disagrees with the .pdiparams data is named, the others still show', { skip: expectations['mlp/model.json'] ? false : 'corpus missing' }, async () => {
    let changed = null;
    const { model } = await mutated('mlp/model.json', (doc) => {
        const param = doc.program.regions[0].blocks[0].ops.find((op) => op['#'] === 'p' && op.O.TT.D[1].length === 2);
        changed = param.A[3];
        param.O.TT.D[1] = [param.O.TT.D[1][1], param.O.TT.D[1][0]];
    });
    const values = parameterValues(model.modules[0]);
    const bad = values.get(changed);
    assert.equal(bad.initializer.values, null);
    assert.match(bad.description, /^values unavailable: shape \[\d+,\d+\] in the program, \[\d+,\d+\] in 'model\.pdiparams'$/);
    for (const [name, value] of values) {
        if (name !== changed) {
            assert.ok(value.initializer.values, `${name} still has values`);
        }
    }
    const props = Object.fromEntries(model.metadata.map((m) => [m.name, m.value]));
    assert.match(props.weights, /1 of 4 tensors do not match the program/);
});

test('values of enclosing blocks enter a region as its inputs', { skip: expectations['control_flow/model.json'] ? false : 'corpus missing' }, async () => {
    let checked = 0;
    for (const target of ['control_flow/model.json', 'nested_cf/model.json']) {
        // eslint-disable-next-line no-await-in-loop
        const { model } = await open(path.join(corpus, target));
        const visit = (graph) => {
            for (const node of leaves(graph)) {
                for (const block of node.blocks) {
                    const region = block.value;
                    const defined = new Set(region.inputs.flatMap((a) => a.value));
                    for (const inner of leaves(region)) {
                        for (const argument of inner.outputs) {
                            argument.value.forEach((v) => defined.add(v));
                        }
                    }
                    // Every non-constant value used inside the region comes from an edge.
                    for (const inner of leaves(region)) {
                        for (const argument of inner.inputs) {
                            for (const value of argument.value) {
                                if (!value.initializer && argument.name !== 'captured') {
                                    assert.ok(defined.has(value), `${target} ${block.name}: ${inner.name} input ${argument.name} (${value.name}) has a source in the region`);
                                    checked++;
                                }
                            }
                        }
                    }
                    visit(region);
                }
            }
        };
        visit(model.modules[0]);
    }
    assert.ok(checked > 0);
});

test('folded constants keep their data type and exact values', { skip: expectations['mlp/model.json'] ? false : 'corpus missing' }, async () => {
    const values = { uint8: 200, int8: -7, int16: -300, int32: 70000, int64: 123456789, float32: 0.1, float64: 0.1, float16: 0.1, bfloat16: 0.1, bool: true };
    const { model } = await mutated('mlp/model.json', (doc) => {
        const ops = doc.program.regions[0].blocks[0].ops;
        const relu = ops.findIndex((op) => op['#'] === '1.relu');
        const x = ops[relu].I[0]['%'];
        let id = 900000;
        const added = [];
        for (const [dtype, value] of Object.entries(values)) {
            id++;
            // Paddle writes the value of full as a double whatever the dtype (a bool as 1.0).
            const at = dtype === 'bool' ? { '#': '0.a_f64', D: 1 } : dtype.startsWith('float') || dtype === 'bfloat16' ? { '#': '0.a_f64', D: value } : { '#': '0.a_i64', D: value };
            added.push({ '#': '1.full', A: [{ N: 'shape', AT: { '#': '1.a_intarray', D: [2] } }, { N: 'value', AT: at }, { N: 'dtype', AT: { '#': '1.a_dtype', D: dtype } }], O: [{ '%': id, TT: { '#': '0.t_dtensor', D: [{ '#': '0.t_f32' }, [2], 'NCHW', [], 0] } }] });
            added.push({ '#': '1.add', I: [{ '%': x }, { '%': id }], O: [{ '%': id + 1000 }], A: [] });
        }
        ops.splice(relu, 0, ...added);
    });
    const decode = (tensor) => {
        const data = tensor.values;
        const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
        switch (tensor.type.dataType) {
            case 'uint8': return Array.from(new Uint8Array(buffer));
            case 'int8': return Array.from(new Int8Array(buffer));
            case 'int16': return Array.from(new Int16Array(buffer));
            case 'int32': return Array.from(new Int32Array(buffer));
            case 'int64': return Array.from(new BigInt64Array(buffer), Number);
            case 'float32': return Array.from(new Float32Array(buffer));
            case 'float64': return Array.from(new Float64Array(buffer));
            case 'boolean': return Array.from(new Uint8Array(buffer), (v) => v === 1);
            case 'float16': case 'bfloat16': return Array.from(new Uint16Array(buffer));
            default: throw new Error(tensor.type.dataType);
        }
    };
    // Bits of 0.1 as numpy writes them: float16 0x2e66, bfloat16 0x3dcd (round to nearest even).
    const bits = { float16: 0x2e66, bfloat16: 0x3dcd };
    const adds = leaves(model.modules[0]).filter((node) => node.type.name === 'add' && node.inputs[1].value[0].initializer && node.inputs[1].value[0].initializer.category === 'Constant');
    assert.equal(adds.length, Object.keys(values).length);
    for (const [node, [dtype, value]] of adds.map((node, i) => [node, Object.entries(values)[i]])) {
        const tensor = node.inputs[1].value[0].initializer;
        assert.equal(tensor.type.dataType, dtype === 'bool' ? 'boolean' : dtype);
        const got = decode(tensor);
        const want = dtype in bits ? bits[dtype] : dtype === 'float32' ? Math.fround(value) : value;
        assert.deepEqual(got, [want, want], dtype);
    }
});

test('every folded constant of the corpus shows the value its op holds, in its own data type', { skip: corpus ? false : 'corpus missing' }, async () => {
    const arrays = { uint8: Uint8Array, int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array, float32: Float32Array, float64: Float64Array, boolean: Uint8Array };
    let checked = 0;
    let uint8 = 0;
    for (const entry of models.filter((m) => expectations[m.target])) {
        const file = path.join(corpus, entry.target);
        const doc = JSON.parse(fs.readFileSync(file, 'utf-8'));
        const producers = new Map();
        const walk = (block) => {
            for (const op of block.ops) {
                for (const result of Array.isArray(op.O) ? op.O : []) {
                    producers.set(`%${result['%']}`, op);
                }
                (op.regions || []).forEach((region) => region.blocks.forEach(walk));
            }
        };
        walk(doc.program.regions[0].blocks[0]);
        // eslint-disable-next-line no-await-in-loop
        const { model } = await open(file);
        for (const node of leaves(model.modules[0])) {
            for (const argument of node.inputs) {
                for (const value of argument.value) {
                    const tensor = value.initializer;
                    if (!tensor || tensor.category !== 'Constant' || !(tensor.type.dataType in arrays)) {
                        continue;
                    }
                    const op = producers.get(value.name);
                    const attr = (name) => op.A.find((a) => a.N === name).AT.D;
                    const raw = attr('value');
                    const want = Array.isArray(raw) ? raw.map((item) => typeof item === 'object' ? item.D : item) : new Array(tensor.type.shape.dimensions.reduce((a, b) => a * b, 1)).fill(raw);
                    const data = tensor.values;
                    const got = Array.from(new arrays[tensor.type.dataType](data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)), Number);
                    const cast = tensor.type.dataType === 'float32' ? want.map(Math.fround) : tensor.type.dataType === 'boolean' ? want.map((v) => v ? 1 : 0) : want;
                    assert.deepEqual(got, cast, `${entry.target} ${value.name} (${tensor.type.dataType})`);
                    assert.equal(tensor.type.dataType, attr('dtype') === 'bool' ? 'boolean' : attr('dtype'));
                    checked++;
                    uint8 += tensor.type.dataType === 'uint8' ? 1 : 0;
                }
            }
        }
    }
    assert.ok(checked > 50, `${checked} constants checked`);
    assert.ok(uint8 > 0, 'the corpus has a uint8 constant (threshold)');
});

test('op types carry the documentation generated from Paddle docstrings', { skip: expectations['cnn_bn/model.json'] ? false : 'corpus missing' }, async () => {
    const metadata = JSON.parse(fs.readFileSync(path.join(here, '..', '..', 'src', 'netron_paddle_pir', 'web', 'pir-metadata.json'), 'utf-8'));
    const docs = new Map(metadata.ops.map((entry) => [entry.name, entry]));
    const { context, model } = await open(path.join(corpus, 'cnn_bn', 'model.json'));
    // The documentation table is read after open() returns (Netron shows it only in a sidebar).
    assert.ok(context.value.documentation instanceof Promise, 'open() starts reading the documentation');
    await context.value.documentation;
    let documented = 0;
    for (const node of leaves(model.modules[0])) {
        const name = node.type.name;
        const doc = docs.get(name) || docs.get(name.replace(/_$/, ''));
        if (doc) {
            assert.ok(node.type.description.startsWith(doc.description), name);
            assert.match(node.type.description, new RegExp(`From the docstring of \`${doc.source.replace(/\./g, '\\.')}\` \\(Paddle \\d`));
            assert.deepEqual(node.type.inputs.map((i) => i.name), doc.inputs.map((i) => i.name));
            documented++;
        }
    }
    assert.ok(documented >= 4, `${documented} documented nodes`);
});

// Every level the user can step into: the main graph, each module node's graph, each region.
const levels = (graph, found = []) => {
    found.push(graph);
    for (const node of graph.nodes) {
        if (Array.isArray(node.type.nodes)) {
            levels(node.type, found);
        }
        for (const block of node.blocks) {
            levels(block.value, found);
        }
    }
    return found;
};

test('module nodes keep every edge: values crossing a module are its inputs and outputs', { skip: expectations['bert_2_pre/model.json'] ? false : 'corpus missing' }, async () => {
    let modules = 0;
    let crossing = 0;
    for (const entry of models.filter((m) => expectations[m.target])) {
        // eslint-disable-next-line no-await-in-loop
        const { model } = await open(path.join(corpus, entry.target));
        const graph = model.modules[0];
        const consumersOf = new Map();
        for (const node of leaves(graph)) {
            for (const argument of node.inputs) {
                for (const value of argument.value) {
                    consumersOf.set(value, (consumersOf.get(value) || []).concat([node]));
                }
            }
        }
        const graphOutputs = new Set(graph.outputs.flatMap((a) => a.value));
        for (const level of levels(graph)) {
            // Within each level, every value a node uses comes from an input or a node of that level.
            const defined = new Set(level.inputs.flatMap((a) => a.value));
            level.nodes.forEach((node) => node.outputs.forEach((a) => a.value.forEach((v) => defined.add(v))));
            for (const node of level.nodes) {
                for (const argument of node.inputs) {
                    for (const value of argument.value) {
                        if (!value.initializer && argument.name !== 'captured') {
                            assert.ok(defined.has(value), `${entry.target} ${level.name}: ${node.name} input ${argument.name} (${value.name}) has no edge`);
                        }
                    }
                }
                for (const argument of level.outputs) {
                    argument.value.forEach((value) => assert.ok(defined.has(value), `${entry.target} ${level.name}: output ${value.name} has no edge`));
                }
                if (!Array.isArray(node.type.nodes)) {
                    continue;
                }
                modules++;
                const inner = leaves(node.type);
                assert.ok(inner.length >= 4, `${node.name}: a module node holds at least 4 nodes`);
                assert.deepEqual(node.inputs.map((a) => a.value[0]), node.type.inputs.map((a) => a.value[0]), `${node.name}: the node's inputs are its graph's inputs`);
                assert.deepEqual(node.outputs.map((a) => a.value[0]), node.type.outputs.map((a) => a.value[0]), `${node.name}: the node's outputs are its graph's outputs`);
                const inside = new Set(inner);
                const produced = new Set(inner.flatMap((n) => n.outputs.flatMap((a) => a.value)));
                const used = new Set(inner.flatMap((n) => n.inputs.flatMap((a) => a.value)).filter((v) => !v.initializer));
                const want = Array.from(used).filter((v) => !produced.has(v));
                assert.deepEqual(new Set(node.inputs.map((a) => a.value[0])), new Set(want), `${node.name}: inputs are the values used inside and made outside`);
                const leaving = Array.from(produced).filter((v) => graphOutputs.has(v) || (consumersOf.get(v) || []).some((c) => !inside.has(c)));
                assert.deepEqual(new Set(node.outputs.map((a) => a.value[0])), new Set(leaving), `${node.name}: outputs are the values made inside and used outside`);
                crossing += want.length + leaving.length;
            }
        }
        const props = Object.fromEntries(model.metadata.map((m) => [m.name, m.value]));
        const count = expectations[entry.target].module_nodes;
        if (count > 0) {
            assert.match(props.modules, new RegExp(`^${count} module nodes `), entry.target);
        } else {
            assert.match(props.modules, /^none: /, entry.target);
        }
    }
    assert.ok(modules > 200 && crossing > modules, `${modules} module nodes, ${crossing} crossing values checked`);
});

test('a model with more modules than the limit is drawn flat, with a notice', { skip: expectations['encoder12/model.json'] ? false : 'corpus missing' }, async () => {
    const { paddle } = await import(path.join(here, '..', '..', 'src', 'netron_paddle_pir', 'web', 'paddle-pir-modules.js'));
    const limit = paddle.ModuleGrouping.MAX_MODULES;
    const modules = expectations['encoder12/model.json'].module_nodes;
    assert.ok(modules > 10);
    paddle.ModuleGrouping.MAX_MODULES = 10;
    try {
        const { model } = await open(path.join(corpus, 'encoder12', 'model.json'));
        const graph = model.modules[0];
        assert.equal(graph.nodes.length, expectations['encoder12/model.json'].nodes.length, 'every op node at the top level');
        assert.ok(graph.nodes.every((node) => !Array.isArray(node.type.nodes)), 'no module nodes');
        const props = Object.fromEntries(model.metadata.map((m) => [m.name, m.value]));
        assert.equal(props.modules, `not grouped: ${modules} modules exceed the limit of 10, so the graph is drawn flat (module paths are in the node names)`);
        assert.equal(graph.description, `Drawn flat: ${modules} modules exceed the limit of 10.`);
    } finally {
        paddle.ModuleGrouping.MAX_MODULES = limit;
    }
});
