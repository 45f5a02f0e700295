// Reader tests over the generated corpus, against expectations computed in Python
// (tests/expectations.py) from the JSON, from Paddle's own op names and from the weights that
// Paddle held in memory. Run by tests/test_node.py with PIR_CORPUS set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as url from 'node:url';
import { open } from './context.mjs';

const here = path.dirname(url.fileURLToPath(import.meta.url));
const corpus = process.env.PIR_CORPUS;
const models = JSON.parse(fs.readFileSync(path.join(here, '..', 'models.json'), 'utf-8'));
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
    graph.nodes.forEach((node, index) => {
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

const countNodes = (graph) => graph.nodes.reduce((sum, node) => sum + 1 + node.blocks.reduce((s, b) => s + countNodes(b.value), 0), 0);

const initializers = (graph, found = new Map()) => {
    for (const node of graph.nodes) {
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

        await t.test('nodes, edges and named operands', () => {
            assert.equal(graph.nodes.length, expected.nodes.length, 'top-level node count');
            assert.equal(countNodes(graph), expected.total_nodes, 'node count including regions');
            const of = sources(graph);
            graph.nodes.forEach((node, index) => {
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
                assert.equal(node.group || null, want.struct_name, `${where}: group`);
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
    assert.equal(model.modules[0].nodes.length, expectations['cnn_bn/model.json'].nodes.length);
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
        for (const node of model.modules[0].nodes) {
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
    const nodes = model.modules[0].nodes;
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
    const file = path.join(corpus, 'mlp', 'model.json');
    const params = fs.readFileSync(path.join(corpus, 'mlp', 'model.pdiparams'));
    await assert.rejects(open(file, new Map([['model.pdiparams', params.subarray(0, 100)]])), /Unexpected end of 'model\.pdiparams' at byte \d+ .* in 'model\.json'\./);
    await assert.rejects(open(file, new Map([['model.pdiparams', Buffer.concat([params, params.subarray(0, 10)])]])), /holds more data than the 4 persistable parameters/);
});
