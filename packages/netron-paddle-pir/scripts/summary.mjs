// Prints what the netron-paddle-pir reader makes of a PIR JSON model (used by the demo).
// Usage: node scripts/summary.mjs path/to/model.json
import * as path from 'node:path';
import * as url from 'node:url';

const here = path.dirname(url.fileURLToPath(import.meta.url));
const { open, countNodes } = await import(url.pathToFileURL(path.join(here, '..', 'tests', 'js', 'context.mjs')).href);

const file = process.argv[2];
try {
    const { model } = await open(file);
    if (!model) {
        console.log(`${file}: not a PIR JSON program`);
        process.exit(1);
    }
    const graph = model.modules[0];
    console.log(`${file}\n  format: ${model.format}`);
    for (const item of model.metadata) {
        console.log(`  ${item.name}: ${item.value}`);
    }
    console.log(`  inputs: ${graph.inputs.map((a) => `${a.name}: ${a.value[0].type}`).join(', ')}`);
    console.log(`  outputs: ${graph.outputs.map((a) => `${a.name}: ${a.value[0].type}`).join(', ')}`);
    console.log(`  nodes: ${graph.nodes.length} in the first view, ${countNodes(graph)} op nodes with modules and regions expanded`);
    for (const node of graph.nodes.slice(0, 12)) {
        const inputs = node.inputs.map((a) => `${a.name}=${a.value.map((v) => v.initializer ? `${v.name}${v.initializer.values ? ` <${v.initializer.type}>` : ''}` : v.name).join('|')}`);
        const blocks = node.blocks.map((b) => `${b.name}{${b.value.nodes.length} ops}`).join(' ') + (Array.isArray(node.type.nodes) ? ` module{${node.type.nodes.length} nodes}` : '');
        console.log(`    ${node.name}(${inputs.join(', ')}) -> ${node.outputs.map((a) => a.name).join(', ')} ${blocks}`);
    }
    if (graph.nodes.length > 12) {
        console.log(`    ... ${graph.nodes.length - 12} more`);
    }
} catch (error) {
    console.log(`${file}: ${error.name}: ${error.message}`);
    process.exit(1);
}
