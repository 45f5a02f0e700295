"""ONNX ``GRU`` mapper (X2Paddle 1.6 maps only LSTM), R19."""

from __future__ import annotations

import numpy as np

from .registry import register


def _gru(self, node):
    from x2paddle.core.util import name_generator, string
    from x2paddle.op_mapper.onnx2paddle.opset_legacy import (
        _const_weight_or_none,
        _rename_or_remove_weight,
    )

    names = list(node.layer.input)
    x = self.graph.get_input_node(node, idx=0, copy=True)
    w = self.graph.get_input_node(node, idx=1, copy=True)
    r = self.graph.get_input_node(node, idx=2, copy=True)
    w_np = np.asarray(_const_weight_or_none(w))
    r_np = np.asarray(_const_weight_or_none(r))
    _rename_or_remove_weight(self.weights, w.name)
    _rename_or_remove_weight(self.weights, r.name)
    hidden = int(node.get_attr("hidden_size", w_np.shape[1] // 3))
    num_dir = w_np.shape[0]
    if len(names) > 3 and names[3]:
        b = self.graph.get_input_node(node, idx=3, copy=True)
        b_np = np.asarray(_const_weight_or_none(b))
        _rename_or_remove_weight(self.weights, b.name)
    else:
        b_np = np.zeros((num_dir, 6 * hidden), dtype=w_np.dtype)
    if len(names) > 4 and names[4]:
        raise NotImplementedError("GRU with sequence_lens is not supported")
    if int(node.get_attr("linear_before_reset", 0)) != 1:
        raise NotImplementedError("GRU with linear_before_reset=0 has no Paddle equivalent")
    direction = node.get_attr("direction", "forward")
    if isinstance(direction, bytes):
        direction = direction.decode()
    if direction == "reverse":
        raise NotImplementedError("GRU direction 'reverse' is not supported")

    def zrh_to_rzh(a):  # ONNX gate order z, r, h -> Paddle r, z, c (along axis 1)
        return np.concatenate([a[:, hidden : 2 * hidden], a[:, :hidden], a[:, 2 * hidden :]], 1)

    op_name = name_generator("gru", self.nn_name2id)
    parts = [
        zrh_to_rzh(w_np),
        zrh_to_rzh(r_np),
        zrh_to_rzh(b_np[:, : 3 * hidden]),
        zrh_to_rzh(b_np[:, 3 * hidden :]),
    ]
    for d in range(num_dir):
        suffix = "_reverse" if d == 1 else ""
        for key, arr in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), parts):
            self.weights[f"{op_name}.{key}{suffix}"] = arr[d]
    inputs = {"input": x.name}
    outputs = [op_name, node.output(0)]
    if len(node.layer.output) > 1 and node.layer.output[1]:
        outputs.append(node.output(1))
    else:
        outputs.append(node.name + "_x2pc_h")
    if len(names) > 5 and names[5]:
        inputs["initial_states"] = self.graph.get_node(names[5], copy=True).name
    self.paddle_graph.add_layer(
        "paddle.nn.GRU",
        inputs=inputs,
        outputs=outputs,
        input_size=int(w_np.shape[2]),
        hidden_size=hidden,
        num_layers=1,
        direction=string(direction),
        time_major=True,
    )
    y = node.output(0)
    self.paddle_graph.add_layer(
        "paddle.reshape", inputs={"x": y}, outputs=[y], shape=[0, 0, -1, hidden]
    )
    self.paddle_graph.add_layer("paddle.transpose", inputs={"x": y}, outputs=[y], perm=[0, 2, 1, 3])


@register("onnx-gru", "R19", "map the ONNX GRU operator onto paddle.nn.GRU")
def _onnx_gru(fix) -> None:
    from x2paddle.op_mapper.onnx2paddle import opset_legacy

    fix.patch(opset_legacy.OpSet, "GRU", opset_legacy.print_mapping_info(_gru))
