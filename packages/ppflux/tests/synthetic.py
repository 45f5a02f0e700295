"""Synthetic original-layout FLUX checkpoints of any size as sparse files (header only).

The data region is a hole in the file, so a 24 GB FLUX.1-dev-shaped checkpoint takes a few
kilobytes of disk and reads back as zeros. Used by tests and by the memory benchmark.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

_SIZE = {"F32": 4, "BF16": 2, "F16": 2}


def flux_bfl_shapes(
    hidden=3072,
    depth=19,
    single_depth=38,
    in_channels=64,
    txt_dim=4096,
    pooled=768,
    head_dim=128,
    mlp_ratio=4,
    guidance=True,
    out_channels=None,
) -> dict:
    mlp = hidden * mlp_ratio
    s = {}

    def lin(name, i, o):
        s[f"{name}.weight"] = [o, i]
        s[f"{name}.bias"] = [o]

    lin("img_in", in_channels, hidden)
    lin("txt_in", txt_dim, hidden)
    for name, d_in in (("time_in", 256), ("vector_in", pooled)) + (
        (("guidance_in", 256),) if guidance else ()
    ):
        lin(f"{name}.in_layer", d_in, hidden)
        lin(f"{name}.out_layer", hidden, hidden)
    for i in range(depth):
        b = f"double_blocks.{i}"
        for side in ("img", "txt"):
            lin(f"{b}.{side}_mod.lin", hidden, 6 * hidden)
            lin(f"{b}.{side}_attn.qkv", hidden, 3 * hidden)
            s[f"{b}.{side}_attn.norm.query_norm.scale"] = [head_dim]
            s[f"{b}.{side}_attn.norm.key_norm.scale"] = [head_dim]
            lin(f"{b}.{side}_attn.proj", hidden, hidden)
            lin(f"{b}.{side}_mlp.0", hidden, mlp)
            lin(f"{b}.{side}_mlp.2", mlp, hidden)
    for i in range(single_depth):
        b = f"single_blocks.{i}"
        lin(f"{b}.modulation.lin", hidden, 3 * hidden)
        lin(f"{b}.linear1", hidden, 3 * hidden + mlp)
        lin(f"{b}.linear2", hidden + mlp, hidden)
        s[f"{b}.norm.query_norm.scale"] = [head_dim]
        s[f"{b}.norm.key_norm.scale"] = [head_dim]
    lin("final_layer.adaLN_modulation.1", hidden, 2 * hidden)
    lin("final_layer.linear", hidden, out_channels or in_channels)
    return s


def write_sparse_safetensors(path, shapes: dict, dtype: str = "BF16") -> Path:
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = _SIZE[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    path = Path(path)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)))
        fh.write(blob)
        fh.truncate(8 + len(blob) + offset)
    return path
