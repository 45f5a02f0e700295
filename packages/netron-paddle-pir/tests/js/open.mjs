// Opens one file with the reader as Netron would and prints what the viewer would show, as JSON:
// {"matched", "error": {"name", "message"} | null, "nodes", "weights", "unavailable": [...]}.
// Usage: node open.mjs FILE   (used by tests/test_faults.py)
import { open, leaves, countNodes } from './context.mjs';

const main = async () => {
    const result = { matched: false, error: null, nodes: 0, weights: null, unavailable: [] };
    try {
        const { model } = await open(process.argv[2]);
        if (model) {
            result.matched = true;
            const graph = model.modules[0];
            result.nodes = countNodes(graph);
            const props = Object.fromEntries(model.metadata.map((m) => [m.name, m.value]));
            result.weights = props.weights;
            for (const node of leaves(graph)) {
                for (const argument of node.inputs) {
                    for (const value of argument.value) {
                        if (value.description) {
                            result.unavailable.push([value.name, value.description]);
                        }
                    }
                }
            }
        }
    } catch (error) {
        result.matched = true;
        result.error = { name: error.name, message: error.message };
    }
    process.stdout.write(JSON.stringify(result));
};

await main();
