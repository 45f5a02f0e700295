"""LoRA for ppflux models and pipelines: load (diffusers/PEFT, kohya, original-FLUX/BFL),
set_adapters, fuse/unfuse, unload, save in diffusers format.

Adapters live on the ``nn.Linear`` layers themselves (their class becomes ``LoraLinear``), with
PEFT's parameter names ``<module>.lora_A.<adapter>.weight`` / ``lora_B``, so the base weights keep
their keys. Files hold torch-layout tensors (``lora_A`` [r, in], ``lora_B`` [out, r]).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from ._compat import require_paddle
from .safetensors_io import SafeOpen, save_numpy

paddle = require_paddle()
import paddle.nn as nn  # noqa: E402
import paddle.nn.functional as F  # noqa: E402

from .models._linear import Linear, linear  # noqa: E402

logger = logging.getLogger("ppflux")

# diffusers' train_dreambooth_lora_flux.py default targets
DEFAULT_TARGET_MODULES = [
    "attn.to_k",
    "attn.to_q",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_k_proj",
    "attn.add_q_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
]
TEXT_ENCODER_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "out_proj"]

_RUNTIME = {"scale": 1.0}


class LoraError(ValueError):
    """A LoRA file that does not fit the model."""


# read_lora_file's entry for full (non-LoRA) weights that replace the transformer's own
NORMS = "transformer_norms"


class LoraLinear(nn.Linear):
    """An ``nn.Linear`` carrying LoRA adapters (class swapped in place, keys unchanged)."""

    def _lora_init(self):
        if "lora_A" not in self._sub_layers:
            self.lora_A = nn.LayerDict()
            self.lora_B = nn.LayerDict()
            self.lora_scaling: dict[str, float] = {}
            self.lora_weights: dict[str, float] = {}
            self.active_adapters: list[str] = []
            self.lora_dropout_p: dict[str, float] = {}
            self.merged: list[tuple[str, float]] = []

    def add_adapter(self, name, rank, alpha=None, dropout=0.0, a=None, b=None, b_bias=None):
        """``b_bias``: a bias on lora_B (PEFT's ``lora_bias``, in BFL's control LoRAs); it is
        scaled with the adapter, as PEFT does."""
        self._lora_init()
        in_f, out_f = self.weight.shape
        lin_a = nn.Linear(in_f, rank, bias_attr=False)
        lin_b = nn.Linear(
            rank,
            out_f,
            bias_attr=None if b_bias is not None else False,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0)),
        )
        if b_bias is not None:
            lin_b.bias.set_value(paddle.to_tensor(np.asarray(b_bias), dtype=self.weight.dtype))
        if a is not None:
            lin_a.weight.set_value(
                paddle.to_tensor(np.ascontiguousarray(a.T), dtype=self.weight.dtype)
            )
        if b is not None:
            lin_b.weight.set_value(
                paddle.to_tensor(np.ascontiguousarray(b.T), dtype=self.weight.dtype)
            )
        self.lora_A[name] = lin_a
        self.lora_B[name] = lin_b
        self.lora_scaling[name] = (alpha if alpha is not None else rank) / rank
        self.lora_weights[name] = 1.0
        self.lora_dropout_p[name] = dropout
        if name not in self.active_adapters:
            self.active_adapters.append(name)

    def delta_weight(self, name):
        """The adapter's update in Paddle layout [in, out], scaled."""
        return (self.lora_A[name].weight @ self.lora_B[name].weight) * (
            self.lora_scaling[name] * self.lora_weights[name]
        )

    def delta_bias(self, name):
        """The adapter's lora_B bias, scaled (None without one)."""
        bias = self.lora_B[name].bias
        if bias is None:
            return None
        return bias * (self.lora_scaling[name] * self.lora_weights[name])

    def forward(self, x):
        out = linear(x, self.weight, self.bias)
        merged = {n for n, _ in self.merged} if self.merged else ()
        for name in self.active_adapters:
            if name in merged:
                continue
            h = x
            p = self.lora_dropout_p.get(name, 0.0)
            if p and self.training:
                h = F.dropout(h, p)
            lora_a, lora_b = self.lora_A[name], self.lora_B[name]
            if h.dtype != lora_a.weight.dtype:
                h = h.astype(lora_a.weight.dtype)
            # the two layers' own forward, without two sub-layer calls
            delta = linear(linear(h, lora_a.weight, None), lora_b.weight, lora_b.bias)
            if delta.dtype != out.dtype:
                delta = delta.astype(out.dtype)
            scale = self.lora_scaling[name] * self.lora_weights[name] * _RUNTIME["scale"]
            # a scale of exactly 1 (alpha == rank, the training default) is skipped: the same
            # values, one op less forward and backward
            out = out + (delta if scale == 1.0 else delta * scale)
        return out


def _named_linears(model: nn.Layer) -> dict[str, nn.Linear]:
    return {
        n: m
        for n, m in model.named_sublayers()
        if isinstance(m, nn.Linear)
        and n.split(".")[-2:-1] not in (["lora_A"], ["lora_B"])
        and ".lora_A." not in n
        and ".lora_B." not in n
    }


def matches_target(name: str, targets) -> bool:
    """PEFT's suffix rule: the module name equals a target or ends with '.' + target."""
    return any(name == t or name.endswith("." + t) for t in targets)


def inject_adapter(
    model: nn.Layer,
    adapter_name: str,
    rank: int,
    alpha=None,
    targets=None,
    dropout: float = 0.0,
    init: str = "gaussian",
    seed: int | None = None,
):
    """Add a fresh trainable adapter to every Linear matching ``targets`` (PEFT rule)."""
    targets = targets or DEFAULT_TARGET_MODULES
    rng = np.random.default_rng(seed)
    wrapped = []
    for name, layer in _named_linears(model).items():
        if not matches_target(name, targets):
            continue
        if not isinstance(layer, LoraLinear):
            layer.__class__ = LoraLinear
        in_f = layer.weight.shape[0]
        if init == "gaussian":
            a = rng.standard_normal((rank, in_f)).astype(np.float32) / rank
        else:  # kaiming-uniform(a=sqrt(5)) like torch's Linear default
            bound = 1 / np.sqrt(in_f)
            a = rng.uniform(-bound, bound, (rank, in_f)).astype(np.float32)
        layer.add_adapter(adapter_name, rank, alpha, dropout, a=a)
        wrapped.append(name)
    if not wrapped:
        raise LoraError(f"no module of {type(model).__name__} matches target modules {targets}")
    return wrapped


def lora_layers(model: nn.Layer) -> dict[str, LoraLinear]:
    return {n: m for n, m in model.named_sublayers() if isinstance(m, LoraLinear)}


# ------------------------------------------------------------------------------ file formats
_BFL_SIMPLE = {
    "img_attn.proj": "attn.to_out.0",
    "txt_attn.proj": "attn.to_add_out",
    "img_mlp.0": "ff.net.0.proj",
    "img_mlp.2": "ff.net.2",
    "txt_mlp.0": "ff_context.net.0.proj",
    "txt_mlp.2": "ff_context.net.2",
    "img_mod.lin": "norm1.linear",
    "txt_mod.lin": "norm1_context.linear",
}
_BFL_TOP = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "time_in.in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
    "guidance_in.in_layer": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in.out_layer": "time_text_embed.guidance_embedder.linear_2",
    "final_layer.linear": "proj_out",
    # BFL's final modulation yields (shift, scale), diffusers' norm_out (scale, shift): the
    # LoRA-B rows (and bias) swap halves (see _expand_bfl)
    "final_layer.adaLN_modulation.1": "norm_out.linear",
}
# BFL control LoRAs (Canny/Depth) also carry full RMSNorm scales of the attention q/k norms
_BFL_NORM = re.compile(
    r"(?:double_blocks\.(\d+)\.(img|txt)_attn|single_blocks\.(\d+))\.norm\.(query|key)_norm\.scale$"
)


def _bfl_norm_target(match) -> str:
    double, stream, single, qk = match.groups()
    if double is not None:
        added = "added_" if stream == "txt" else ""
        return f"transformer_blocks.{double}.attn.norm_{added}{qk[0]}.weight"
    return f"single_transformer_blocks.{single}.attn.norm_{qk[0]}.weight"


def _bfl_targets(module: str, hidden: int):
    """BFL module name -> [(diffusers module, row start, row stop | None)]."""
    m = re.match(r"double_blocks\.(\d+)\.(.+)$", module)
    if m:
        i, rest = m.groups()
        p = f"transformer_blocks.{i}"
        if rest == "img_attn.qkv":
            return [(f"{p}.attn.to_{c}", j * hidden, (j + 1) * hidden) for j, c in enumerate("qkv")]
        if rest == "txt_attn.qkv":
            return [
                (f"{p}.attn.add_{c}_proj", j * hidden, (j + 1) * hidden)
                for j, c in enumerate("qkv")
            ]
        if rest in _BFL_SIMPLE:
            return [(f"{p}.{_BFL_SIMPLE[rest]}", 0, None)]
    m = re.match(r"single_blocks\.(\d+)\.(.+)$", module)
    if m:
        i, rest = m.groups()
        p = f"single_transformer_blocks.{i}"
        if rest == "linear1":
            return [
                (f"{p}.attn.to_q", 0, hidden),
                (f"{p}.attn.to_k", hidden, 2 * hidden),
                (f"{p}.attn.to_v", 2 * hidden, 3 * hidden),
                (f"{p}.proj_mlp", 3 * hidden, None),
            ]
        if rest == "linear2":
            return [(f"{p}.proj_out", 0, None)]
        if rest == "modulation.lin":
            return [(f"{p}.norm.linear", 0, None)]
    if module in _BFL_TOP:
        return [(_BFL_TOP[module], 0, None)]
    return None


_KOHYA_BLOCK = re.compile(r"lora_unet_(double_blocks|single_blocks)_(\d+)_(.+)$")


def _kohya_module(name: str):
    """kohya's flattened name -> ('transformer', BFL name) or ('text_encoder', HF name)."""
    m = _KOHYA_BLOCK.match(name)
    if m:
        kind, i, rest = m.groups()
        rest = re.sub(r"^(img|txt)_(attn|mlp|mod)_", r"\1_\2.", rest)
        rest = rest.replace("modulation_lin", "modulation.lin").replace("mod.lin", "mod.lin")
        rest = rest.replace("mod_lin", "mod.lin")
        rest = re.sub(r"mlp\.(\d)$", r"mlp.\1", rest)
        return "transformer", f"{kind}.{i}.{rest}"
    if name.startswith("lora_unet_"):
        rest = name[len("lora_unet_") :]
        for bfl in _BFL_TOP:
            if rest == bfl.replace(".", "_"):
                return "transformer", bfl
        return "transformer", rest
    if name.startswith("lora_te1_"):
        rest = name[len("lora_te1_") :]
        rest = re.sub(
            r"text_model_encoder_layers_(\d+)_(self_attn|mlp)_(\w+)$",
            r"text_model.encoder.layers.\1.\2.\3",
            rest,
        )
        return "text_encoder", rest
    raise LoraError(f"unknown kohya LoRA key {name!r}")


_XLABS = re.compile(
    r"(?:diffusion_model\.)?(double_blocks|single_blocks)\.(\d+)\.processor\."
    r"(proj_lora1|proj_lora2|qkv_lora1|qkv_lora2|proj_lora|qkv_lora)\."
    r"(down|up)\.weight$"
)


def _xlabs_targets(kind: str, i: str, proc: str) -> list[str]:
    """XLabs' processor LoRA -> the diffusers modules it covers (qkv: rows split in three)."""
    if kind == "double_blocks":
        p = f"transformer_blocks.{i}.attn"
        return {
            "proj_lora1": [f"{p}.to_out.0"],
            "proj_lora2": [f"{p}.to_add_out"],
            "qkv_lora1": [f"{p}.to_q", f"{p}.to_k", f"{p}.to_v"],
            "qkv_lora2": [f"{p}.add_q_proj", f"{p}.add_k_proj", f"{p}.add_v_proj"],
        }[proc]
    p = f"single_transformer_blocks.{i}"
    if proc == "proj_lora":
        return [f"{p}.proj_out"]
    if proc == "qkv_lora":
        return [f"{p}.attn.to_q", f"{p}.attn.to_k", f"{p}.attn.to_v"]
    raise LoraError(f"unknown XLabs LoRA processor {kind}.{i}.{proc}")


def read_lora_file(path) -> dict[str, dict]:
    """{component: {diffusers module: {'A': [r,in], 'B': [out,r], 'alpha': float|None,
    'rows': (start, stop)|None, 'bfl': bool}}} from any supported format."""
    path = Path(path)
    if path.is_dir():
        for name in ("pytorch_lora_weights.safetensors", "adapter_model.safetensors"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise LoraError(f"{path}: no pytorch_lora_weights.safetensors in the folder")
    with SafeOpen(path) as reader:
        tensors = {k: reader.get(k, np.float32) for k in reader.keys()}
    out: dict[str, dict] = {}
    if not tensors:
        raise LoraError(f"{path}: empty LoRA file")

    def put(component, module, part, value, bfl=False):
        entry = out.setdefault(component, {}).setdefault(module, {"alpha": None, "bfl": bfl})
        entry[part] = value

    xlabs: dict[tuple, dict] = {}
    for key, value in tensors.items():
        x = _XLABS.match(key)
        if x:  # XLabs' LoRA format (no alphas: scale 1, as diffusers loads it)
            kind, i, proc, part = x.groups()
            xlabs.setdefault(tuple(_xlabs_targets(kind, i, proc)), {})[part] = value
            continue
        k = key
        for prefix in ("base_model.model.", "diffusion_model.", "model.diffusion_model."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        norm = _BFL_NORM.match(k.removeprefix("transformer."))
        if norm:  # a full weight that replaces the model's (control LoRAs)
            out.setdefault(NORMS, {})[_bfl_norm_target(norm)] = value
            continue
        if k.endswith(".lora_B.bias"):
            module = k[: -len(".lora_B.bias")]
            component = "transformer"
            if module.startswith("transformer."):
                module = module[len("transformer.") :]
            bfl = module.startswith(("double_blocks.", "single_blocks.")) or module in _BFL_TOP
            put(component, module, "B_bias", value, bfl)
            continue
        if k.startswith("lora_unet_") or k.startswith("lora_te1_"):
            module, _, part = k.partition(".")
            component, mod = _kohya_module(module)
            part = {"lora_down.weight": "A", "lora_up.weight": "B", "alpha": "alpha"}.get(part)
            if part is None:
                raise LoraError(f"{path}: unexpected kohya key {key!r}")
            put(
                component,
                mod,
                part,
                float(value) if part == "alpha" else value,
                bfl=component == "transformer",
            )
            continue
        m = re.match(
            r"(.+?)\.(lora_A|lora_B|lora_down|lora_up|down|up)(\.[^.]+)?\.weight$", k
        ) or re.match(r"(.+?)\.(alpha)$", k)
        if not m:
            raise LoraError(
                f"{path}: {key!r} is not a LoRA key (expected lora_A/lora_B, "
                "lora_down/lora_up or kohya names)"
            )
        module, kind = m.group(1), m.group(2)
        part = {
            "lora_A": "A",
            "lora_down": "A",
            "down": "A",
            "lora_B": "B",
            "lora_up": "B",
            "up": "B",
            "alpha": "alpha",
        }[kind]
        component = "transformer"
        for comp in ("transformer.", "text_encoder.", "text_encoder_2.", "unet."):
            if module.startswith(comp):
                component, module = comp[:-1], module[len(comp) :]
                break
        if component == "unet":
            raise LoraError(f"{path}: a UNet (Stable Diffusion) LoRA, not a FLUX one")
        bfl = component == "transformer" and (
            module.startswith(("double_blocks.", "single_blocks.")) or module in _BFL_TOP
        )
        put(component, module, part, float(value) if part == "alpha" else value, bfl)
    for targets, parts in xlabs.items():
        if "down" not in parts or "up" not in parts:
            raise LoraError(f"{path}: XLabs LoRA for {targets[0]} lacks its down or up weight")
        up = parts["up"]
        if up.shape[0] % len(targets):
            raise LoraError(
                f"{path}: XLabs qkv LoRA for {targets[0]} has {up.shape[0]} rows, "
                "not a multiple of 3"
            )
        rows = up.shape[0] // len(targets)
        for j, name in enumerate(targets):
            put("transformer", name, "A", parts["down"])
            put("transformer", name, "B", up[j * rows : (j + 1) * rows])
    for component, modules in out.items():
        if component == NORMS:
            continue
        for module, entry in modules.items():
            if "A" not in entry or "B" not in entry:
                raise LoraError(f"{path}: {component}.{module} lacks lora_A or lora_B")
    return out


def _expand_bfl(modules: dict, hidden: int, path) -> dict:
    result = {}
    for module, entry in modules.items():
        if not entry.get("bfl"):
            result[module] = entry
            continue
        targets = _bfl_targets(module, hidden)
        if targets is None:
            raise LoraError(f"{path}: LoRA module {module!r} has no FLUX counterpart")
        for name, start, stop in targets:
            b = entry["B"][start:stop]
            bias = entry.get("B_bias")
            bias = None if bias is None else bias[start:stop]
            if module == "final_layer.adaLN_modulation.1":
                b, bias = _swap_halves(b), None if bias is None else _swap_halves(bias)
            result[name] = {"A": entry["A"], "B": b, "alpha": entry["alpha"], "B_bias": bias}
    return result


def _swap_halves(rows: np.ndarray) -> np.ndarray:
    """(shift, scale) rows -> (scale, shift)."""
    half = rows.shape[0] // 2
    return np.concatenate([rows[half:], rows[:half]])


def _expand_linear_input(model: nn.Layer, name: str, in_features: int):
    """Replace the Linear ``name`` by one reading ``in_features`` inputs: the old weight in
    the first rows, zeros for the new inputs (diffusers' control-LoRA expansion); the
    transformer's ``in_channels`` follows ``x_embedder``."""
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_sublayer(parent_name) if parent_name else model
    old = getattr(parent, attr)
    in_old, out_f = old.weight.shape
    new = nn.Linear(in_features, out_f, bias_attr=None if old.bias is not None else False)
    new.to(dtype=old.weight.dtype)
    weight = paddle.zeros([in_features, out_f], dtype=old.weight.dtype)
    weight[:in_old] = old.weight
    new.weight.set_value(weight)
    if old.bias is not None:
        new.bias.set_value(old.bias)
    setattr(parent, attr, new)
    if name == "x_embedder" and hasattr(model, "register_to_config"):
        model.register_to_config(in_channels=in_features)
    return new


def load_lora_into_model(model: nn.Layer, modules: dict, adapter_name: str, path="<dict>"):
    linears = _named_linears(model)
    hidden = getattr(model, "inner_dim", None)
    if any(e.get("bfl") for e in modules.values()):
        if hidden is None:
            raise LoraError(f"{path}: original-FLUX LoRA keys need a FLUX transformer")
        modules = _expand_bfl(modules, hidden, path)
    unknown = [m for m in modules if m not in linears]
    if unknown:
        raise LoraError(
            f"{path}: LoRA targets modules that {type(model).__name__} does not have "
            f"(another architecture?): {unknown[:5]}"
        )
    for name, entry in modules.items():
        layer = linears[name]
        a, b = entry["A"], entry["B"]
        in_f, out_f = layer.weight.shape
        if name == "x_embedder" and a.shape[1] > in_f and b.shape[0] == out_f:
            # a control LoRA (latents + control latents): widen the input as diffusers does
            layer = _expand_linear_input(model, name, a.shape[1])
            in_f = a.shape[1]
        elif name == "x_embedder" and a.shape[1] < in_f:
            # a plain LoRA on a widened model: zero columns for the extra inputs (diffusers)
            a = np.concatenate([a, np.zeros((a.shape[0], in_f - a.shape[1]), a.dtype)], 1)
        if a.shape[1] != in_f or b.shape[0] != out_f or a.shape[0] != b.shape[1]:
            raise LoraError(
                f"{path}: LoRA for {name} has A {list(a.shape)} / B {list(b.shape)}, "
                f"the layer is {in_f}->{out_f} (another model size?)"
            )
        if not isinstance(layer, LoraLinear):
            layer.__class__ = LoraLinear
        layer.add_adapter(
            adapter_name, a.shape[0], entry["alpha"], a=a, b=b, b_bias=entry.get("B_bias")
        )
    return list(modules)


def load_norms_into_model(model: nn.Layer, norms: dict, path="<dict>") -> dict:
    """Replace the RMSNorm scales a control LoRA carries; returns the previous values (numpy)
    for ``unload_lora_weights``."""
    params = dict(model.named_parameters())
    unknown = [k for k in norms if k not in params]
    if unknown:
        raise LoraError(f"{path}: norm weights for modules the model lacks: {unknown[:5]}")
    previous = {}
    for key, value in norms.items():
        param = params[key]
        if tuple(param.shape) != tuple(value.shape):
            raise LoraError(
                f"{path}: {key} has shape {list(value.shape)}, the model's is {list(param.shape)}"
            )
        previous[key] = param.numpy().copy()
        param.set_value(paddle.to_tensor(np.asarray(value), dtype=param.dtype))
    return previous


def lora_state_dict(model: nn.Layer, adapter_name: str, prefix: str) -> dict[str, np.ndarray]:
    """Torch-layout diffusers keys; alpha/r is baked into lora_B so files need no alpha."""
    out = {}
    for name, layer in lora_layers(model).items():
        if adapter_name not in layer.lora_A:
            continue
        scale = layer.lora_scaling[adapter_name]
        out[f"{prefix}.{name}.lora_A.weight"] = (
            layer.lora_A[adapter_name].weight.astype("float32").numpy().T.copy()
        )
        out[f"{prefix}.{name}.lora_B.weight"] = (
            layer.lora_B[adapter_name].weight.astype("float32").numpy().T * np.float32(scale)
        ).copy()
    return out


def save_lora_weights(
    save_directory,
    transformer_lora_layers: dict | None = None,
    text_encoder_lora_layers: dict | None = None,
    weight_name: str = "pytorch_lora_weights.safetensors",
):
    folder = Path(save_directory)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {**(transformer_lora_layers or {}), **(text_encoder_lora_layers or {})}
    if not tensors:
        raise LoraError("nothing to save: no LoRA layers given")
    save_numpy(folder / weight_name, tensors, {"format": "pt"})
    return folder / weight_name


class FluxLoraLoaderMixin:
    """diffusers-style LoRA methods for the ppflux pipelines."""

    _lora_components = ("transformer", "text_encoder")

    def _lora_models(self):
        return {
            c: self._component(c) for c in self._lora_components if self._component(c) is not None
        }

    def load_lora_weights(self, pretrained_model_name_or_path_or_dict, adapter_name=None, **kwargs):
        source = pretrained_model_name_or_path_or_dict
        if self.low_memory:
            raise LoraError(
                "load_lora_weights needs the components in memory: load the "
                "pipeline without low_memory=True"
            )
        self._lora_count = getattr(self, "_lora_count", 0)
        adapter_name = adapter_name or f"default_{self._lora_count}"
        self._lora_count += 1
        parsed = read_lora_file(source) if isinstance(source, (str, os.PathLike)) else source
        parsed = dict(parsed)
        norms = parsed.pop(NORMS, None)
        models = self._lora_models()
        if norms:
            previous = load_norms_into_model(models["transformer"], norms, source)
            saved = getattr(self, "_overwritten_norms", {})
            self._overwritten_norms = {**previous, **saved}  # the first originals win
        for component, modules in parsed.items():
            if component not in models:
                raise LoraError(f"{source}: LoRA for {component!r}, which this pipeline lacks")
            load_lora_into_model(models[component], modules, adapter_name, source)
        self._adapters = getattr(self, "_adapters", []) + [adapter_name]
        return adapter_name

    def get_list_adapters(self):
        return {
            c: sorted({a for lay in lora_layers(m).values() for a in lay.lora_A})
            for c, m in self._lora_models().items()
        }

    def get_active_adapters(self):
        return list(getattr(self, "_active", getattr(self, "_adapters", [])))

    def set_adapters(self, adapter_names, adapter_weights=None):
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        if adapter_weights is None:
            weights = [1.0] * len(names)
        elif isinstance(adapter_weights, (int, float)):
            weights = [float(adapter_weights)] * len(names)
        else:
            weights = list(adapter_weights)
        if len(weights) != len(names):
            raise ValueError("adapter_weights must have one weight per adapter name")
        known = {a for v in self.get_list_adapters().values() for a in v}
        missing = [n for n in names if n not in known]
        if missing:
            raise ValueError(f"unknown adapter(s) {missing}; loaded: {sorted(known)}")
        for model in self._lora_models().values():
            for layer in lora_layers(model).values():
                layer.active_adapters = [n for n in names if n in layer.lora_A]
                for n, w in zip(names, weights):
                    if n in layer.lora_weights:
                        layer.lora_weights[n] = float(w)
        self._active = names

    def disable_lora(self):
        for model in self._lora_models().values():
            for layer in lora_layers(model).values():
                layer.active_adapters = []

    def enable_lora(self):
        self.set_adapters(self.get_active_adapters())

    def fuse_lora(self, components=None, lora_scale: float = 1.0, adapter_names=None):
        """Merge the active adapters (x lora_scale) into the base weights."""
        comps = components or list(self._lora_components)
        for c, model in self._lora_models().items():
            if c not in comps:
                continue
            for layer in lora_layers(model).values():
                for name in adapter_names or layer.active_adapters:
                    if any(n == name for n, _ in layer.merged):
                        continue
                    delta = layer.delta_weight(name) * lora_scale
                    layer.weight.set_value(layer.weight + delta.astype(layer.weight.dtype))
                    bias = layer.delta_bias(name)
                    if bias is not None:
                        layer.bias.set_value(layer.bias + (bias * lora_scale).astype(bias.dtype))
                    layer.merged.append((name, lora_scale))

    def unfuse_lora(self, components=None):
        comps = components or list(self._lora_components)
        for c, model in self._lora_models().items():
            if c not in comps:
                continue
            for layer in lora_layers(model).values():
                while layer.merged:
                    name, scale = layer.merged.pop()
                    delta = layer.delta_weight(name) * scale
                    layer.weight.set_value(layer.weight - delta.astype(layer.weight.dtype))
                    bias = layer.delta_bias(name)
                    if bias is not None:
                        layer.bias.set_value(layer.bias - (bias * scale).astype(bias.dtype))

    def unload_lora_weights(self):
        """Remove every adapter (fused ones are unfused first) and restore plain Linears."""
        self.unfuse_lora()
        for model in self._lora_models().values():
            for layer in lora_layers(model).values():
                for attr in ("lora_A", "lora_B"):
                    layer._sub_layers.pop(attr, None)
                for attr in (
                    "lora_scaling",
                    "lora_weights",
                    "active_adapters",
                    "lora_dropout_p",
                    "merged",
                ):
                    layer.__dict__.pop(attr, None)
                layer.__class__ = Linear
        norms = getattr(self, "_overwritten_norms", None)
        if norms:  # a control LoRA's norm scales: back to the model's own (as diffusers)
            load_norms_into_model(self._lora_models()["transformer"], norms)
        self._overwritten_norms = {}
        self._adapters, self._active = [], []

    def delete_adapters(self, adapter_names):
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        for model in self._lora_models().values():
            for layer in lora_layers(model).values():
                for n in names:
                    if n in layer.lora_A:
                        layer.lora_A._sub_layers.pop(n, None)
                        layer.lora_B._sub_layers.pop(n, None)
                    if n in layer.active_adapters:
                        layer.active_adapters.remove(n)

    def save_lora_weights_of(self, save_directory, adapter_name: str):
        """Write one loaded/trained adapter in diffusers format."""
        models = self._lora_models()
        te = models.get("text_encoder")
        return save_lora_weights(
            save_directory,
            lora_state_dict(models["transformer"], adapter_name, "transformer"),
            lora_state_dict(te, adapter_name, "text_encoder") if te is not None else None,
        )

    save_lora_weights = staticmethod(save_lora_weights)


def load_lora_into_pipeline(pipe, path, adapter_name=None):
    return FluxLoraLoaderMixin.load_lora_weights(pipe, path, adapter_name=adapter_name)


class lora_scale:
    """Context manager for joint_attention_kwargs={'scale': s} (runtime LoRA scale)."""

    def __init__(self, scale):
        self.scale = 1.0 if scale is None else float(scale)

    def __enter__(self):
        self.previous = _RUNTIME["scale"]
        _RUNTIME["scale"] = self.scale

    def __exit__(self, *exc):
        _RUNTIME["scale"] = self.previous
