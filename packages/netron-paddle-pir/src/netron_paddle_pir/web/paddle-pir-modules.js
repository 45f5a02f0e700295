// Grouping of a graph's nodes by module (the 'struct_name' attribute Paddle writes on each op),
// as nested graphs that Netron draws as single nodes and lets the user step into (the node's
// type is itself a graph, as Netron does for ONNX functions). This needs no layout clusters:
// Netron 9.3's layout of clusters fails on real models (see paddle.Graph in paddle-pir.js),
// while a module node is an ordinary node, and each level is laid out on its own when entered.

import { paddle } from './paddle-pir-program.js';

paddle.ModuleGrouping = class {

    constructor(options) {
        // A module with fewer nodes than this stays inline in its parent: a Linear (matmul, add) or
        // a Conv2D with bias (conv2d, reshape, add) is shown as its ops.
        this.minNodes = options && options.minNodes !== undefined ? options.minNodes : paddle.ModuleGrouping.MIN_NODES;
        // Deeper module paths are cut at this depth: their nodes sit in the module at the cut.
        this.maxDepth = options && options.maxDepth !== undefined ? options.maxDepth : paddle.ModuleGrouping.MAX_DEPTH;
        // More modules than this in one model: the model is drawn flat, with a notice.
        this.maxModules = options && options.maxModules !== undefined ? options.maxModules : paddle.ModuleGrouping.MAX_MODULES;
        this.modules = 0;
        this.grouped = false; // some node has a module path
        this.names = new Map(); // module path -> times used (a module called twice gets two nodes)
    }

    // paths: Map node -> module path segments (empty for ops outside any module), for the
    // nodes of this graph (regions included: their nodes are grouped in their own graph).
    group(graph, paths, prefix) {
        const items = graph.nodes.map((node) => ({ node, path: paddle.ModuleGrouping.strip(paths.get(node) || [], prefix || []) }));
        if (!items.some((item) => item.path.length > 0)) {
            return graph.nodes;
        }
        this.grouped = true;
        const producer = new Map();
        const consumers = new Map();
        for (const node of graph.nodes) {
            for (const argument of node.outputs) {
                for (const value of argument.value) {
                    producer.set(value, node);
                }
            }
            for (const argument of node.inputs) {
                for (const value of argument.value) {
                    if (!value.initializer) {
                        const list = consumers.get(value);
                        if (list) {
                            list.push(node);
                        } else {
                            consumers.set(value, [node]);
                        }
                    }
                }
            }
        }
        const outputs = new Set(graph.outputs.flatMap((argument) => argument.value));
        this._graph = { producer, consumers, outputs };
        const nodes = this._build(items, 0, prefix || []);
        if (nodes.length === 1 && nodes[0].type instanceof paddle.Module) {
            // The whole graph is one module (a model that is an nn.TransformerEncoder): open
            // on its content rather than on a single box.
            this.modules--;
            return nodes[0].type.nodes;
        }
        return nodes;
    }

    // How deep module nodes nest in these nodes (0: none).
    static depth(nodes) {
        let depth = 0;
        for (const node of nodes) {
            if (node.type instanceof paddle.Module) {
                depth = Math.max(depth, 1 + paddle.ModuleGrouping.depth(node.type.nodes));
            }
        }
        return depth;
    }

    static strip(path, prefix) {
        let index = 0;
        while (index < prefix.length && index < path.length && path[index] === prefix[index]) {
            index++;
        }
        return index === prefix.length ? path.slice(index) : path;
    }

    // Consecutive nodes (in program order) that share the module at this depth become one module
    // node. Runs keep the graph acyclic: a module is a contiguous stretch of a topological order.
    _build(items, depth, prefix) {
        const nodes = [];
        let index = 0;
        while (index < items.length) {
            const item = items[index];
            if (item.path.length <= depth || depth >= this.maxDepth) {
                nodes.push(item.node);
                index++;
                continue;
            }
            const key = item.path[depth];
            let end = index + 1;
            while (end < items.length && items[end].path.length > depth && items[end].path[depth] === key) {
                end++;
            }
            const run = items.slice(index, end);
            index = end;
            if (run.length < this.minNodes) {
                nodes.push(...run.map((entry) => entry.node));
                continue;
            }
            const inner = this._build(run, depth + 1, prefix);
            if (inner.length === 1 && inner[0].type instanceof paddle.Module) {
                nodes.push(inner[0]); // a module whose nodes all sit in one child: the child stands for it
                continue;
            }
            nodes.push(this._module(prefix.concat(item.path.slice(0, depth + 1)), inner, run.map((entry) => entry.node)));
        }
        return nodes;
    }

    _module(path, nodes, leaves) {
        const { producer, consumers, outputs } = this._graph;
        const inside = new Set(leaves);
        const inputs = [];
        const seen = new Set();
        for (const node of leaves) {
            for (const argument of node.inputs) {
                for (const value of argument.value) {
                    if (!value.initializer && !seen.has(value) && !inside.has(producer.get(value))) {
                        seen.add(value);
                        inputs.push(value);
                    }
                }
            }
        }
        const results = [];
        for (const node of leaves) {
            for (const argument of node.outputs) {
                for (const value of argument.value) {
                    const used = consumers.get(value) || [];
                    if (outputs.has(value) || used.some((consumer) => !inside.has(consumer))) {
                        results.push(value);
                    }
                }
            }
        }
        let name = path.join('/');
        const count = this.names.get(name) || 0;
        this.names.set(name, count + 1);
        if (count > 0) {
            name = `${name}:${count}`;
        }
        this.modules++;
        const arg = (value) => new paddle.Argument(value.name, [value]);
        const type = new paddle.Module(path[path.length - 1], name, leaves.length, inputs.map(arg), results.map(arg), nodes);
        const node = new paddle.Node(type, name);
        node.inputs = inputs.map(arg);
        node.outputs = results.map(arg);
        return node;
    }
};

paddle.ModuleGrouping.MIN_NODES = 4;
paddle.ModuleGrouping.MAX_DEPTH = 8;
paddle.ModuleGrouping.MAX_MODULES = 20000;

// A module instance as Netron sees it: the type of its node, and a graph the user can enter.
paddle.Module = class {

    constructor(name, path, count, inputs, outputs, nodes) {
        this.name = name;
        this.type = 'graph';
        this.module = path;
        this.description = `Module '${path}' (from the ops' struct_name): ${count} nodes. Its inputs and outputs are the values that cross its boundary.`;
        this.inputs = inputs;
        this.outputs = outputs;
        this.nodes = nodes;
    }
};

export { paddle };
