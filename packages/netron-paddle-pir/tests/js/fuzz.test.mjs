// Fuzz: mutate corpus files (deleted keys, wrong types, truncated JSON and weights) and check
// that the reader either opens the model or throws its own readable error naming the file;
// never another exception, and never a model that breaks when Netron walks it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from './context.mjs';

const corpus = process.env.PIR_CORPUS;
const ROUNDS = Number(process.env.PIR_FUZZ_ROUNDS || 300);
const TARGETS = ['mlp/model.json', 'control_flow/model.json', 'nested_cf/model.json', 'lstm/model.json', 'static_untrainable/model.json', 'static_separate/__model__.json'];

// Small deterministic PRNG (mulberry32), so a failure can be replayed from its seed.
const random = (seed) => () => {
    seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const paths = (obj, prefix = [], out = []) => {
    if (obj && typeof obj === 'object') {
        for (const key of Object.keys(obj)) {
            out.push(prefix.concat([key]));
            paths(obj[key], prefix.concat([key]), out);
        }
    }
    return out;
};

const WRONG = [null, 0, -7, 1.5, 'x', '', true, [], {}, [1, 2], { '#': 'bogus' }, { '%': 'x' }];

const mutate = (text, rand) => {
    const kind = Math.floor(rand() * 4);
    if (kind === 3) {
        return { kind: 'truncate', text: text.substring(0, Math.floor(rand() * text.length)) };
    }
    const doc = JSON.parse(text);
    const all = paths(doc);
    const target = all[Math.floor(rand() * all.length)];
    let parent = doc;
    for (const key of target.slice(0, -1)) {
        parent = parent[key];
    }
    const key = target[target.length - 1];
    if (kind === 0) {
        if (Array.isArray(parent)) {
            parent.splice(Number(key), 1);
        } else {
            delete parent[key];
        }
        return { kind: `delete ${target.join('.')}`, text: JSON.stringify(doc) };
    }
    if (kind === 1) {
        parent[key] = WRONG[Math.floor(rand() * WRONG.length)];
        return { kind: `retype ${target.join('.')} = ${JSON.stringify(parent[key])}`, text: JSON.stringify(doc) };
    }
    if (typeof parent[key] === 'number') {
        parent[key] = Math.floor(rand() * 60) - 10;
    } else {
        parent[key] = WRONG[Math.floor(rand() * WRONG.length)];
    }
    return { kind: `renumber ${target.join('.')} = ${JSON.stringify(parent[key])}`, text: JSON.stringify(doc) };
};

// What Netron does with a model: walk every graph, node, argument, value and type.
const walk = (graph, depth = 0) => {
    assert.ok(depth < 64, 'graph nesting too deep');
    for (const argument of graph.inputs.concat(graph.outputs)) {
        for (const value of argument.value) {
            assert.equal(typeof value.name, 'string');
            if (value.type) {
                String(value.type);
            }
        }
    }
    for (const node of graph.nodes) {
        assert.equal(typeof node.type.name, 'string');
        for (const argument of node.inputs.concat(node.outputs)) {
            assert.ok(Array.isArray(argument.value), 'argument values are a list');
            for (const value of argument.value) {
                assert.ok(value, 'no null values');
                if (value.type) {
                    String(value.type);
                }
            }
        }
        for (const block of node.blocks) {
            walk(block.value, depth + 1);
        }
        if (Array.isArray(node.type.nodes)) {
            walk(node.type, depth + 1); // a module node: its graph
        }
    }
};

for (const target of TARGETS) {
    test(`fuzz ${target}`, { skip: corpus && fs.existsSync(path.join(corpus, target)) ? false : 'corpus missing' }, async () => {
        const file = path.join(corpus, target);
        const original = fs.readFileSync(file, 'utf-8');
        const rand = random(target.length * 7919);
        const stats = { opened: 0, readable: 0, unmatched: 0, fallback: 0 };
        for (let round = 0; round < ROUNDS; round++) {
            const files = new Map();
            let kind = '';
            if (round % 10 === 9 && !target.startsWith('static_separate')) {
                const params = fs.readFileSync(path.join(path.dirname(file), 'model.pdiparams'));
                const cut = Math.floor(rand() * params.length);
                files.set('model.pdiparams', params.subarray(0, cut));
                kind = `truncate model.pdiparams at ${cut}`;
            } else {
                const mutation = mutate(original, rand);
                files.set(path.basename(file), Buffer.from(mutation.text));
                kind = mutation.kind;
            }
            let result = null;
            try {
                // eslint-disable-next-line no-await-in-loop
                result = await open(file, files);
            } catch (error) {
                assert.equal(error.name, 'Error loading Paddle PIR model.', `round ${round} (${kind}): unexpected ${error.stack}`);
                assert.ok(error.message.includes(path.basename(file)), `round ${round} (${kind}): message must name the file: ${error.message}`);
                stats.readable++;
                if (error.message.startsWith('Invalid PIR JSON structure')) {
                    stats.fallback++;
                }
                continue;
            }
            if (!result.model) {
                stats.unmatched++; // not PIR JSON any more: left to Netron's other readers
                continue;
            }
            walk(result.model.modules[0]);
            stats.opened++;
        }
        // The catch-all message is a safety net; the structural checks should name the path.
        assert.ok(stats.fallback <= stats.readable * 0.1 + 1, `too many errors without a JSON path: ${JSON.stringify(stats)}`);
        console.log(`# ${target}: ${JSON.stringify(stats)}`);
    });
}
