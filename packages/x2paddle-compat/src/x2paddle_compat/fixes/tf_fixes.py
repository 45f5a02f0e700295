"""Fixes in X2Paddle's TensorFlow front end for graphs frozen from TF2 / Keras 3 models."""

from __future__ import annotations

import functools

from .registry import register


@register(
    "tf2-frozen-graphs",
    "N3",
    "TF2-frozen graphs (convert_variables_to_constants_v2 of Keras models): NoOp "
    "nodes, '^' control inputs and IdentityN (custom gradients) are dropped (X2Paddle reported 'NoOp' as an "
    "unsupported operator) and node names that are not Python identifiers after "
    "X2Paddle's '/'/'-' replacement (Keras names such as 'mobilenetv2_0.35_224') are "
    "sanitized (X2Paddle emitted code with a SyntaxError)",
)
def _tf2_frozen_graphs(fix) -> None:
    from x2paddle.decoder import tf_decoder  # ImportError without tensorflow

    original = tf_decoder.TFDecoder._check_input_shape

    @functools.wraps(original)
    def _check_input_shape(self, graph_def):
        legalize_tf_graph(graph_def)
        return original(self, graph_def)

    fix.patch(tf_decoder.TFDecoder, "_check_input_shape", _check_input_shape)


def legalize_tf_graph(graph_def) -> bool:
    """Drop NoOp nodes and control inputs, make node names identifier-safe (in place)."""
    import re

    changed = False
    # IdentityN (tf.custom_gradient, e.g. Keras' swish/silu): consumers read its inputs
    ident = {
        n.name: [i for i in n.input if not i.startswith("^")]
        for n in graph_def.node
        if n.op == "IdentityN"
    }
    if ident:
        for node in graph_def.node:
            for k, inp in enumerate(node.input):
                name, _, port = inp.partition(":")
                while name in ident:
                    inp = ident[name][int(port or 0)]
                    name, _, port = inp.partition(":")
                node.input[k] = inp
        keep = [n for n in graph_def.node if n.name not in ident]
        del graph_def.node[:]
        graph_def.node.extend(keep)
        changed = True
    noops = {n.name for n in graph_def.node if n.op == "NoOp"}
    if noops or any(i.startswith("^") for n in graph_def.node for i in n.input):
        kept = [n for n in graph_def.node if n.name not in noops]
        for node in kept:
            data_inputs = [i for i in node.input if not i.startswith("^")]
            del node.input[:]
            node.input.extend(data_inputs)
        del graph_def.node[:]
        graph_def.node.extend(kept)
        changed = True
    bad = re.compile(r"[^A-Za-z0-9_/\-]")
    names = {n.name for n in graph_def.node}
    renames = {}
    for node in graph_def.node:
        if bad.search(node.name) or node.name[:1].isdigit():
            new = bad.sub("_", node.name)
            new = "n_" + new if new[:1].isdigit() else new
            while new in names:
                new += "_"
            names.add(new)
            renames[node.name] = new
    if renames:
        for node in graph_def.node:
            if node.name in renames:
                node.name = renames[node.name]
            for k, inp in enumerate(node.input):
                name, sep, port = inp.partition(":")
                if name in renames:
                    node.input[k] = renames[name] + sep + port
        changed = True
    return changed


@register(
    "tf-keras3-ops",
    "N4",
    "operators Keras 3 graphs contain that X2Paddle's TF mapper lacks: Less "
    "(paddle.less_than) and SelectV2 (broadcasting where), both emitted by "
    "keras.layers.Embedding's negative-index handling",
)
def _tf_keras3_ops(fix) -> None:
    from x2paddle.op_mapper.tf2paddle import tf_op_mapper  # ImportError without tensorflow

    mapper = tf_op_mapper.TFOpMapper
    fix.patch(mapper, "bool_ops", {**mapper.bool_ops, "Less": "paddle.less_than"})
    fix.patch(mapper, "SelectV2", mapper.Where)


@register(
    "tf-consumed-outputs",
    "N5",
    "a graph output that other nodes also consume (a TF2-frozen model returning both "
    "a hidden state and something computed from it) was dropped from the converted "
    "model's outputs when X2Paddle removed the output's Identity node",
)
def _tf_consumed_outputs(fix) -> None:
    from x2paddle.decoder import tf_decoder  # ImportError without tensorflow

    original = tf_decoder.TFGraph._remove_identity_node

    @functools.wraps(original)
    def _remove_identity_node(self, *args, **kwargs):
        identity_ops = {"Identity", "StopGradient", "PlaceholderWithDefault"}
        outputs = list(self.output_nodes)
        source = {}
        for name in outputs:
            node = self.get_node(name)
            while node.layer_type in identity_ops and node.inputs:
                node = self.get_node(node.inputs[0])
            source[name] = node.layer_name
        result = original(self, *args, **kwargs)
        kept = []
        for name in outputs:
            if source[name] not in kept:
                kept.append(source[name])
        self.output_nodes[:] = kept
        return result

    fix.patch(tf_decoder.TFGraph, "_remove_identity_node", _remove_identity_node)


@register(
    "tf-pack-scalars",
    "R9",
    "TF Pack of scalars (shape vectors built at run time, e.g. Keras 3 UpSampling2D's "
    "Tile multiples) mixes X2Paddle's [1]-shaped scalars with Paddle 3's 0-d tensors; "
    "paddle.stack refused them (`input[0]'s shape = [1], input[2]'s shape = []`), so "
    "each scalar is flattened and concatenated",
)
def _tf_pack_scalars(fix) -> None:
    from x2paddle.op_mapper.tf2paddle import tf_op_mapper  # ImportError without tensorflow

    mapper = tf_op_mapper.TFOpMapper
    original = mapper.Pack

    @functools.wraps(original)
    def Pack(self, node):
        if len(node.out_shapes[0]) != 1:
            return original(self, node)
        names = []
        for i in range(len(node.inputs)):
            name = f"{node.name}_s{i}"
            self.paddle_graph.add_layer(
                kernel="paddle.reshape",
                inputs={"x": self.graph.get_input_node(node, i).name},
                outputs=[name],
                shape=[-1],
            )
            names.append(name)
        self.paddle_graph.add_layer(
            kernel="paddle.concat", inputs={"x": names}, outputs=[node.name], axis=0
        )

    fix.patch(mapper, "Pack", Pack)
