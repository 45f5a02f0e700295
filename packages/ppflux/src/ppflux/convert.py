"""Original (Black Forest Labs / XLabs) single-file FLUX checkpoints -> diffusers layout.

Works for any width and depth: hidden size, head dim, MLP width, in-channels, text and pooled
dims and the number of double/single blocks are all read from the tensor shapes (upstream
converters hard-code ``inner_dim = 3072``). It streams: the output header is computed from the
shapes, then each output tensor is sliced from the memory-mapped input and written, so peak
memory is about one tensor. It needs numpy only (no Paddle, no torch).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._atomic import atomic_dir, prepare_output
from ._errors import UserError
from .safetensors_io import SafeOpen, write_streaming

Spec = tuple[str, str, list, Callable[[], np.ndarray]]


class ConversionError(UserError, ValueError):
    """An input that is not a checkpoint of the expected kind."""


def _strip(key: str) -> str:
    for prefix in ("model.diffusion_model.", "diffusion_model.", "model."):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


class _Source:
    """Raw tensors of the input by stripped name, each sliceable along axis 0."""

    def __init__(self, reader: SafeOpen):
        self.reader = reader
        self.names = {_strip(k): k for k in reader.keys()}

    def has(self, name):
        return name in self.names

    def shape(self, name):
        return self.reader.shape(self.names[name])

    def dtype(self, name):
        return self.reader.dtype(self.names[name])

    def spec(self, out: str, name: str, start=None, stop=None, swap_halves=False) -> Spec:
        if name not in self.names:
            raise ConversionError(f"{self.reader.path}: tensor {name!r} is missing")
        shape = self.shape(name)
        dtype = self.dtype(name)
        if not self.reader.is_float(self.names[name]):
            # every FLUX weight is a float: an integer here is a damaged or foreign file, and
            # copying it would give a model that loads and computes garbage
            raise ConversionError(
                f"tensor {self.names[name]!r} is {dtype}, a float weight was expected",
                self.reader.path,
            )
        if start is not None:
            if len(shape) < 1 or stop > shape[0]:
                raise ConversionError(
                    f"tensor {self.names[name]!r} has shape {shape}, too "
                    f"small to take rows {start}:{stop}",
                    self.reader.path,
                )
            shape = [stop - start, *shape[1:]]
        key = self.names[name]

        def produce():
            arr = self.reader.raw(key)
            if start is not None:
                arr = arr[start:stop]
            if swap_halves:
                half = arr.shape[0] // 2
                arr = np.concatenate([arr[half:], arr[:half]], axis=0)
            return arr

        return (out, dtype, shape, produce)

    def linear(self, out_prefix: str, name_prefix: str, bias=True, **kw) -> list[Spec]:
        specs = [self.spec(f"{out_prefix}.weight", f"{name_prefix}.weight", **kw)]
        if bias and self.has(f"{name_prefix}.bias"):
            specs.append(self.spec(f"{out_prefix}.bias", f"{name_prefix}.bias", **kw))
        return specs

    def split(self, out_prefixes, name_prefix, sizes) -> list[Spec]:
        specs, start = [], 0
        total = self.shape(f"{name_prefix}.weight")[0]
        if sum(sizes) != total:
            raise ConversionError(
                f"{self.reader.path}: {name_prefix}.weight has {total} rows, "
                f"expected {sum(sizes)} = {'+'.join(map(str, sizes))}"
            )
        for out, size in zip(out_prefixes, sizes):
            specs += self.linear(out, name_prefix, start=start, stop=start + size)
            start += size
        return specs


def _count(src: _Source, prefix: str) -> int:
    idx = {int(m.group(1)) for n in src.names if (m := re.match(rf"{prefix}\.(\d+)\.", n))}
    if idx and idx != set(range(max(idx) + 1)):
        raise ConversionError(f"{src.reader.path}: {prefix} indices are not contiguous")
    return max(idx) + 1 if idx else 0


def _default_axes(head_dim: int) -> list[int]:
    if head_dim == 128:
        return [16, 56, 56]
    # FLUX's split scaled to the head dim when it stays even; else ask the user
    a = head_dim // 8
    b = (head_dim - a) // 2
    if a % 2 == 0 and b % 2 == 0 and a + 2 * b == head_dim:
        return [a, b, b]
    raise ConversionError(
        f"attention head dim is {head_dim}: pass axes_dims_rope (three even "
        f"numbers summing to {head_dim}), e.g. --axes-dims-rope"
    )


def _embedders(src: _Source) -> list[Spec]:
    specs = []
    specs += src.linear("time_text_embed.timestep_embedder.linear_1", "time_in.in_layer")
    specs += src.linear("time_text_embed.timestep_embedder.linear_2", "time_in.out_layer")
    specs += src.linear("time_text_embed.text_embedder.linear_1", "vector_in.in_layer")
    specs += src.linear("time_text_embed.text_embedder.linear_2", "vector_in.out_layer")
    if src.has("guidance_in.in_layer.weight"):
        specs += src.linear("time_text_embed.guidance_embedder.linear_1", "guidance_in.in_layer")
        specs += src.linear("time_text_embed.guidance_embedder.linear_2", "guidance_in.out_layer")
    specs += src.linear("context_embedder", "txt_in")
    specs += src.linear("x_embedder", "img_in")
    return specs


def _double_block(src: _Source, i: int, hidden: int) -> list[Spec]:
    o, s = f"transformer_blocks.{i}", f"double_blocks.{i}"
    specs = []
    specs += src.linear(f"{o}.norm1.linear", f"{s}.img_mod.lin")
    specs += src.linear(f"{o}.norm1_context.linear", f"{s}.txt_mod.lin")
    specs += src.split(
        [f"{o}.attn.to_q", f"{o}.attn.to_k", f"{o}.attn.to_v"], f"{s}.img_attn.qkv", [hidden] * 3
    )
    specs += src.split(
        [f"{o}.attn.add_q_proj", f"{o}.attn.add_k_proj", f"{o}.attn.add_v_proj"],
        f"{s}.txt_attn.qkv",
        [hidden] * 3,
    )
    specs.append(src.spec(f"{o}.attn.norm_q.weight", f"{s}.img_attn.norm.query_norm.scale"))
    specs.append(src.spec(f"{o}.attn.norm_k.weight", f"{s}.img_attn.norm.key_norm.scale"))
    specs.append(src.spec(f"{o}.attn.norm_added_q.weight", f"{s}.txt_attn.norm.query_norm.scale"))
    specs.append(src.spec(f"{o}.attn.norm_added_k.weight", f"{s}.txt_attn.norm.key_norm.scale"))
    specs += src.linear(f"{o}.attn.to_out.0", f"{s}.img_attn.proj")
    specs += src.linear(f"{o}.attn.to_add_out", f"{s}.txt_attn.proj")
    specs += src.linear(f"{o}.ff.net.0.proj", f"{s}.img_mlp.0")
    specs += src.linear(f"{o}.ff.net.2", f"{s}.img_mlp.2")
    specs += src.linear(f"{o}.ff_context.net.0.proj", f"{s}.txt_mlp.0")
    specs += src.linear(f"{o}.ff_context.net.2", f"{s}.txt_mlp.2")
    return specs


def _single_block(src: _Source, i: int, hidden: int) -> list[Spec]:
    o, s = f"single_transformer_blocks.{i}", f"single_blocks.{i}"
    mlp = src.shape(f"{s}.linear1.weight")[0] - 3 * hidden
    if mlp <= 0:
        raise ConversionError(f"{src.reader.path}: {s}.linear1 is too small for hidden {hidden}")
    specs = []
    specs += src.linear(f"{o}.norm.linear", f"{s}.modulation.lin")
    specs += src.split(
        [f"{o}.attn.to_q", f"{o}.attn.to_k", f"{o}.attn.to_v", f"{o}.proj_mlp"],
        f"{s}.linear1",
        [hidden, hidden, hidden, mlp],
    )
    specs.append(src.spec(f"{o}.attn.norm_q.weight", f"{s}.norm.query_norm.scale"))
    specs.append(src.spec(f"{o}.attn.norm_k.weight", f"{s}.norm.key_norm.scale"))
    specs += src.linear(f"{o}.proj_out", f"{s}.linear2")
    return specs


def _base_config(src: _Source, axes_dims_rope=None) -> tuple[dict, int]:
    for needed in (
        "img_in.weight",
        "txt_in.weight",
        "time_in.in_layer.weight",
        "vector_in.in_layer.weight",
    ):
        if not src.has(needed):
            raise ConversionError(
                f"{src.reader.path}: not an original FLUX checkpoint ({needed!r} missing; "
                f"first keys: {list(src.names)[:5]})"
            )
    hidden, in_channels = src.shape("img_in.weight")
    probe = (
        "double_blocks.0.img_attn.norm.query_norm.scale"
        if src.has("double_blocks.0.img_attn.norm.query_norm.scale")
        else "single_blocks.0.norm.query_norm.scale"
    )
    if not src.has(probe):
        raise ConversionError(f"{src.reader.path}: no attention block found")
    head_dim = src.shape(probe)[0]
    if hidden % head_dim:
        raise ConversionError(
            f"{src.reader.path}: hidden {hidden} is not a multiple of head dim {head_dim}"
        )
    axes = list(axes_dims_rope) if axes_dims_rope else _default_axes(head_dim)
    if sum(axes) != head_dim:
        raise ConversionError(f"axes_dims_rope {axes} must sum to the head dim {head_dim}")
    config = {
        "patch_size": 1,
        "in_channels": in_channels,
        "num_layers": _count(src, "double_blocks"),
        "num_single_layers": _count(src, "single_blocks"),
        "attention_head_dim": head_dim,
        "num_attention_heads": hidden // head_dim,
        "joint_attention_dim": src.shape("txt_in.weight")[1],
        "pooled_projection_dim": src.shape("vector_in.in_layer.weight")[1],
        "guidance_embeds": src.has("guidance_in.in_layer.weight"),
        "axes_dims_rope": axes,
    }
    return config, hidden


def transformer_specs(reader: SafeOpen, axes_dims_rope=None) -> tuple[dict, list[Spec]]:
    """Config and output tensor specs for flux1-dev/schnell-style checkpoints."""
    src = _Source(reader)
    config, hidden = _base_config(src, axes_dims_rope)
    if not src.has("final_layer.linear.weight"):
        raise ConversionError(
            f"{reader.path}: final_layer.linear.weight missing (a ControlNet? "
            "use --kind controlnet)"
        )
    config["out_channels"] = src.shape("final_layer.linear.weight")[0]
    if config["out_channels"] == config["in_channels"]:
        config["out_channels"] = None
    specs = _embedders(src)
    for i in range(config["num_layers"]):
        specs += _double_block(src, i, hidden)
    for i in range(config["num_single_layers"]):
        specs += _single_block(src, i, hidden)
    # BFL's final modulation is (shift, scale); diffusers' AdaLayerNormContinuous (scale, shift)
    specs += src.linear("norm_out.linear", "final_layer.adaLN_modulation.1", swap_halves=True)
    specs += src.linear("proj_out", "final_layer.linear")
    config["_class_name"] = "FluxTransformer2DModel"
    return config, specs


def controlnet_specs(reader: SafeOpen, axes_dims_rope=None) -> tuple[dict, list[Spec]]:
    """XLabs-style original ControlNet (``input_hint_block``, ``pos_embed_input``,
    ``controlnet_blocks``) -> diffusers FluxControlNetModel."""
    src = _Source(reader)
    config, hidden = _base_config(src, axes_dims_rope)
    specs = _embedders(src)
    for i in range(config["num_layers"]):
        specs += _double_block(src, i, hidden)
    for i in range(config["num_single_layers"]):
        specs += _single_block(src, i, hidden)
    if not src.has("controlnet_blocks.0.weight"):
        raise ConversionError(
            f"{reader.path}: controlnet_blocks.0.weight missing (not a ControlNet checkpoint?)"
        )
    for i in range(_count(src, "controlnet_blocks")):
        specs += src.linear(f"controlnet_blocks.{i}", f"controlnet_blocks.{i}")
    for i in range(_count(src, "controlnet_single_blocks")):
        specs += src.linear(f"controlnet_single_blocks.{i}", f"controlnet_single_blocks.{i}")
    if src.has("pos_embed_input.weight"):
        specs += src.linear("controlnet_x_embedder", "pos_embed_input")
    elif src.has("controlnet_x_embedder.weight"):
        specs += src.linear("controlnet_x_embedder", "controlnet_x_embedder")
    hint = sorted(
        {
            int(m.group(1))
            for n in src.names
            if (m := re.match(r"input_hint_block\.(\d+)\.weight", n))
        }
    )
    if hint:
        config["conditioning_embedding_channels"] = src.shape(
            f"input_hint_block.{hint[-1]}.weight"
        )[0]
        specs += src.linear("input_hint_block.conv_in", f"input_hint_block.{hint[0]}")
        for j, idx in enumerate(hint[1:-1]):
            specs += src.linear(f"input_hint_block.blocks.{j}", f"input_hint_block.{idx}")
        specs += src.linear("input_hint_block.conv_out", f"input_hint_block.{hint[-1]}")
    config["_class_name"] = "FluxControlNetModel"
    return config, specs


def detect_kind(reader: SafeOpen) -> str:
    names = {_strip(k) for k in reader.keys()}
    if any(n.startswith("controlnet_blocks.") for n in names):
        return "controlnet"
    if "final_layer.linear.weight" in names:
        return "transformer"
    if any(n.startswith("transformer_blocks.") for n in names):
        raise ConversionError(
            f"{reader.path}: this is already in the diffusers layout; load it "
            "directly (from_pretrained) or use `ppflux convert --to-paddle`"
        )
    raise ConversionError(
        f"{reader.path}: not a FLUX checkpoint the converter knows "
        f"(first keys: {sorted(names)[:5]})"
    )


def convert_original(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    kind: str = "auto",
    axes_dims_rope=None,
    dtype: str | None = None,
    progress: bool = True,
    sparse_zeros: bool = False,
    overwrite: bool = False,
) -> dict:
    """Convert one original single-file checkpoint into a diffusers model folder.

    ``dtype`` ("float32", "bfloat16", "float16") re-encodes the tensors; by default they keep
    their stored dtype. Returns the config written. The folder appears only when complete; an
    existing non-empty ``output_dir`` is refused unless ``overwrite`` (then replaced only when
    the new one is complete).
    """
    checkpoint = Path(checkpoint)
    output_dir = prepare_output(output_dir, overwrite=overwrite)
    if not checkpoint.exists():
        raise ConversionError("no such file", checkpoint)
    if not checkpoint.is_file():
        raise ConversionError(
            "not a file (a single-file .safetensors checkpoint is expected)", checkpoint
        )
    with SafeOpen(checkpoint) as reader:
        kind = detect_kind(reader) if kind == "auto" else kind
        make = {"transformer": transformer_specs, "controlnet": controlnet_specs}.get(kind)
        if make is None:
            raise ConversionError(f"unknown kind {kind!r} (transformer, controlnet or auto)")
        config, specs = make(reader, axes_dims_rope)
        if dtype:
            specs = [_recast(s, dtype) for s in specs]
        bar = _Progress(len(specs)) if progress else None
        if bar is not None:
            specs = bar.wrap(specs)
        try:
            with atomic_dir(output_dir, overwrite=overwrite) as tmp:
                write_streaming(
                    tmp / "diffusion_pytorch_model.safetensors",
                    specs,
                    {"format": "pt", "converted_by": "ppflux"},
                    sparse_zeros,
                )
                (tmp / "config.json").write_text(json.dumps(config, indent=2))
        except OSError as exc:
            # name the output the user asked for, not the hidden temporary beside it
            raise ConversionError(
                f"cannot write the output: {_reason(exc)}; nothing was written", output_dir
            ) from exc
        finally:
            if bar is not None:
                bar.close()
    return config


def _reason(exc: OSError) -> str:
    import errno

    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def _recast(spec: Spec, dtype: str) -> Spec:
    from .safetensors_io import bf16_to_f32

    name, src_dtype, shape, produce = spec
    target = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}[dtype]
    if src_dtype not in ("F32", "F16", "BF16") or src_dtype == target:
        return spec

    def make():
        arr = produce()
        arr = bf16_to_f32(arr) if src_dtype == "BF16" else arr.astype(np.float32)
        return (
            arr if target == "BF16" else arr.astype({"F32": np.float32, "F16": np.float16}[target])
        )

    return (name, target, shape, make)


class _Progress:
    """A tqdm bar over the output tensors, opened at the first tensor written (so nothing is
    drawn before the output is known to be writable) and always closed."""

    def __init__(self, total: int):
        self.total, self.bar = total, None

    def wrap(self, specs: list[Spec]) -> list[Spec]:
        def wrapped(produce):
            def make():
                arr = produce()
                if self.bar is None:
                    from tqdm.auto import tqdm

                    self.bar = tqdm(total=self.total, desc="converting", unit="tensor")
                self.bar.update()
                return arr

            return make

        return [(n, d, s, wrapped(p)) for n, d, s, p in specs]

    def close(self):
        if self.bar is not None:
            self.bar.close()
