"""Weight conversion between checkpoint layouts, tensor by tensor.

Layouts:

* ``ppgotocr``: our folder (``config.json`` with ``"format": "ppgotocr"``, ``model.safetensors``
  with Paddle names and ``[in, out]`` Linear weights).
* ``transformers``: ``GotOcr2ForConditionalGeneration`` (``model_type: got_ocr2``), on-disk
  legacy names (``language_model.model.*``) or in-memory names (``model.language_model.*``).
* ``original``: stepfun-ai/GOT-OCR2_0 (``model.vision_tower_high.*``, ``net_2``/``net_3``,
  ``mm_projector_vary``, a copied ``lm_head.weight``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

ORIGINAL_CONFIG_KEYS = ("im_patch_token", "im_start_token", "im_end_token")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json", "qwen.tiktoken")
_LINEAR_LEAVES = {"qkv", "proj", "lin1", "lin2", "multimodal_projector", "q_proj", "k_proj",
                  "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"}


class ConversionError(ValueError):
    pass


def is_linear_weight(paddle_name: str) -> bool:
    parts = paddle_name.split(".")
    return parts[-1] == "weight" and len(parts) >= 2 and parts[-2] in _LINEAR_LEAVES


# --------------------------------------------------------------------------- reading sources
class SafetensorsSource:
    """All tensors of a folder (single file or sharded index), opened lazily."""

    def __init__(self, folder: Path):
        from safetensors import safe_open

        folder = Path(folder)
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        elif (folder / "model.safetensors").is_file():
            files = ["model.safetensors"]
        else:
            raise ConversionError(f"{folder}: no model.safetensors or model.safetensors.index.json "
                                  "(PyTorch .bin checkpoints are not read; re-save as safetensors)")
        self._handles = {}
        self._headers = {}
        self.key_to_file = {}
        self.folder = folder
        for name in files:
            handle = safe_open(str(folder / name), framework="numpy")
            self._handles[name] = handle
            self._headers[name] = _read_header(folder / name)
            for key in handle.keys():
                self.key_to_file[key] = name

    def keys(self) -> list[str]:
        return list(self.key_to_file)

    def shape(self, key: str) -> tuple:
        return tuple(self._handles[self.key_to_file[key]].get_slice(key).get_shape())

    def get(self, key: str) -> np.ndarray:
        """float32 array; bf16 (numpy has no such dtype) is widened bit-exactly by hand."""
        name = self.key_to_file[key]
        header_len, header = self._headers[name]
        info = header[key]
        if info["dtype"] == "BF16":
            start, end = info["data_offsets"]
            raw = np.fromfile(self.folder / name, dtype=np.uint16, count=(end - start) // 2,
                              offset=8 + header_len + start)
            return (raw.astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])
        arr = self._handles[name].get_tensor(key)
        return arr.astype(np.float32) if arr.dtype != np.float32 else arr


def _read_header(path: Path) -> tuple[int, dict]:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return n, json.loads(f.read(n))


def _open_source(folder: Path) -> SafetensorsSource:
    try:
        return SafetensorsSource(folder)
    except ConversionError:
        raise
    except Exception as exc:  # corrupt header etc.
        raise ConversionError(f"{folder}: cannot read the weights: {exc}") from exc


def detect_layout(folder) -> str:
    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ConversionError(f"{folder}: no config.json")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{cfg_path}: invalid JSON: {exc}") from exc
    if cfg.get("format") == "ppgotocr":
        return "ppgotocr"
    if cfg.get("model_type") == "got_ocr2":
        return "transformers"
    if any(k in cfg for k in ORIGINAL_CONFIG_KEYS) or cfg.get("model_type") == "GOT":
        return "original"
    raise ConversionError(f"{cfg_path}: neither a ppgotocr, a transformers got_ocr2 nor an "
                          "original GOT config")


# --------------------------------------------------------------------------- name maps
_ORIG_NECK = {"0": "conv1", "1": "layer_norm1", "2": "conv2", "3": "layer_norm2"}


def original_to_paddle_name(key: str) -> str | None:
    """None for ``lm_head.weight`` (handled separately)."""
    if key == "lm_head.weight":
        return None
    m = re.match(r"model\.vision_tower_high\.(.*)$", key)
    if m:
        rest = m.group(1)
        if rest.startswith("net_2."):
            return "multi_modal_projector.conv_upsampler1." + rest[len("net_2."):]
        if rest.startswith("net_3."):
            return "multi_modal_projector.conv_upsampler2." + rest[len("net_3."):]
        rest = rest.replace("patch_embed.proj.", "patch_embed.projection.")
        rest = re.sub(r"^blocks\.(\d+)\.norm([12])\.", r"layers.\1.layer_norm\2.", rest)
        rest = re.sub(r"^blocks\.", "layers.", rest)
        rest = re.sub(r"^neck\.([0-3])\.", lambda g: f"neck.{_ORIG_NECK[g.group(1)]}.", rest)
        return "vision_tower." + rest
    if key.startswith("model.mm_projector_vary."):
        return "multi_modal_projector.multimodal_projector." + key[len("model.mm_projector_vary."):]
    if key.startswith("model."):
        return "language_model." + key[len("model."):]
    raise ConversionError(f"unexpected tensor in an original GOT checkpoint: {key}")


def paddle_to_original_name(name: str) -> str:
    if name == "lm_head.weight":
        return name
    if name.startswith("multi_modal_projector.conv_upsampler1."):
        return "model.vision_tower_high.net_2." + name.split(".", 2)[2]
    if name.startswith("multi_modal_projector.conv_upsampler2."):
        return "model.vision_tower_high.net_3." + name.split(".", 2)[2]
    if name.startswith("multi_modal_projector.multimodal_projector."):
        return "model.mm_projector_vary." + name.split(".", 2)[2]
    if name.startswith("vision_tower."):
        rest = name[len("vision_tower."):]
        rest = rest.replace("patch_embed.projection.", "patch_embed.proj.")
        rest = re.sub(r"^layers\.(\d+)\.layer_norm([12])\.", r"blocks.\1.norm\2.", rest)
        rest = re.sub(r"^layers\.", "blocks.", rest)
        inv = {v: k for k, v in _ORIG_NECK.items()}
        rest = re.sub(r"^neck\.(\w+)\.", lambda g: f"neck.{inv[g.group(1)]}.", rest)
        return "model.vision_tower_high." + rest
    if name.startswith("language_model."):
        return "model." + name[len("language_model."):]
    raise ConversionError(f"cannot map {name} to the original layout")


def transformers_to_paddle_name(key: str) -> str:
    for prefix, repl in (("model.vision_tower.", "vision_tower."),
                         ("model.multi_modal_projector.", "multi_modal_projector."),
                         ("model.language_model.", "language_model."),
                         ("language_model.model.", "language_model."),
                         ("language_model.lm_head.", "lm_head."),
                         ("vision_tower.", "vision_tower."),
                         ("multi_modal_projector.", "multi_modal_projector."),
                         ("lm_head.", "lm_head.")):
        if key.startswith(prefix):
            return repl + key[len(prefix):]
    raise ConversionError(f"unexpected tensor in a transformers GotOcr2 checkpoint: {key}")


def paddle_to_transformers_name(name: str) -> str:
    # the names transformers 5 reads and writes in memory
    return name if name == "lm_head.weight" else "model." + name


# --------------------------------------------------------------------------- configs
def _config_from_transformers(cfg: dict, folder: Path):
    from .modeling_got_ocr2 import GotOcr2Config, GotOcr2TextConfig, GotOcr2VisionConfig

    vfields = GotOcr2VisionConfig.__dataclass_fields__
    tfields = GotOcr2TextConfig.__dataclass_fields__
    vc = {k: v for k, v in (cfg.get("vision_config") or {}).items() if k in vfields}
    tc_src = dict(cfg.get("text_config") or {})
    if "rope_theta" not in tc_src and isinstance(tc_src.get("rope_parameters"), dict):
        tc_src["rope_theta"] = tc_src["rope_parameters"].get("rope_theta", 1000000.0)
    tc = {k: v for k, v in tc_src.items() if k in tfields}
    tc["tie_word_embeddings"] = bool(cfg.get("tie_word_embeddings",
                                             tc_src.get("tie_word_embeddings", True)))
    if "global_attn_indexes" in vc:
        vc["global_attn_indexes"] = list(vc["global_attn_indexes"])
    config = GotOcr2Config(vision=GotOcr2VisionConfig(**vc), text=GotOcr2TextConfig(**tc))
    config.image_token_id = cfg.get("image_token_index", cfg.get("image_token_id"))
    config.eos_token_id = _first(tc_src.get("eos_token_id", cfg.get("eos_token_id")))
    config.pad_token_id = tc_src.get("pad_token_id", cfg.get("pad_token_id"))
    _fill_ids_from_files(config, folder)
    return config


def _first(v):
    return v[0] if isinstance(v, list) and v else v


def _fill_ids_from_files(config, folder: Path) -> None:
    """Token ids missing from the model config come from generation_config / tokenizer.json."""
    gen = folder / "generation_config.json"
    if gen.is_file():
        g = json.loads(gen.read_text())
        if config.eos_token_id is None:
            config.eos_token_id = _first(g.get("eos_token_id"))
        if config.pad_token_id is None:
            config.pad_token_id = g.get("pad_token_id")
    tok = folder / "tokenizer.json"
    if tok.is_file():
        added = {t["content"]: t["id"] for t in json.loads(tok.read_text()).get("added_tokens", [])}
        for attr, content in (("img_start_token_id", "<img>"), ("img_end_token_id", "</img>"),
                              ("image_token_id", "<imgpad>"), ("eos_token_id", "<|endoftext|>")):
            if getattr(config, attr) is None and content in added:
                setattr(config, attr, added[content])
    if config.pad_token_id is None:
        config.pad_token_id = config.eos_token_id


def _config_from_original(cfg: dict, src: SafetensorsSource, folder: Path):
    """Text dims from config.json; vision dims (hard-coded in the original code) from shapes."""
    from .modeling_got_ocr2 import GotOcr2Config, GotOcr2TextConfig, GotOcr2VisionConfig

    tfields = GotOcr2TextConfig.__dataclass_fields__
    tc = {k: v for k, v in cfg.items() if k in tfields}
    keys = src.keys()
    p = "model.vision_tower_high."
    pos = src.shape(p + "pos_embed")
    patch = src.shape(p + "patch_embed.proj.weight")
    blocks = sorted({int(m.group(1)) for k in keys if (m := re.match(re.escape(p) + r"blocks\.(\d+)\.", k))})
    rel = [src.shape(f"{p}blocks.{i}.attn.rel_pos_h") for i in blocks]
    side = pos[1]
    head_dim = rel[0][1]
    global_idx = [i for i, r in zip(blocks, rel) if r[0] == 2 * side - 1]
    window = [r[0] for r in rel if r[0] != 2 * side - 1]
    vc = GotOcr2VisionConfig(
        hidden_size=pos[3], output_channels=src.shape(p + "neck.0.weight")[0],
        num_hidden_layers=len(blocks), num_attention_heads=pos[3] // head_dim,
        num_channels=patch[1], image_size=side * patch[2], patch_size=patch[2],
        window_size=(window[0] + 1) // 2 if window else 14, global_attn_indexes=global_idx,
        mlp_dim=src.shape(p + "blocks.0.mlp.lin1.weight")[0],
        qkv_bias=(p + "blocks.0.attn.qkv.bias") in src.key_to_file)
    config = GotOcr2Config(vision=vc, text=GotOcr2TextConfig(**tc))
    config.image_token_id = cfg.get("im_patch_token")
    config.img_start_token_id = cfg.get("im_start_token")
    config.img_end_token_id = cfg.get("im_end_token")
    config.eos_token_id = _first(cfg.get("eos_token_id"))
    config.pad_token_id = cfg.get("pad_token_id")
    _fill_ids_from_files(config, folder)
    return config


# --------------------------------------------------------------------------- plan
def _plan(folder: Path):
    """(config, iterator of (paddle_name, array in paddle layout)), one tensor in memory at a time."""
    from .modeling_got_ocr2 import GotOcr2Config

    layout = detect_layout(folder)
    cfg = json.loads((folder / "config.json").read_text())
    src = _open_source(folder)
    if layout == "ppgotocr":
        config = GotOcr2Config.from_dict(cfg)
        return config, layout, ((k, src.get(k)) for k in src.keys())
    if layout == "transformers":
        config = _config_from_transformers(cfg, folder)
        mapping = {k: transformers_to_paddle_name(k) for k in src.keys()}
    else:
        config = _config_from_original(cfg, src, folder)
        mapping = {k: original_to_paddle_name(k) for k in src.keys()}
    for name, value in (("image_token_id (<imgpad>)", config.image_token_id),
                        ("eos_token_id", config.eos_token_id)):
        if value is None:
            raise ConversionError(f"{folder}: {name} is not in config.json, "
                                  "generation_config.json or tokenizer.json")
    embed_key = next((k for k, v in mapping.items() if v == "language_model.embed_tokens.weight"), None)
    head_key = next((k for k, v in mapping.items() if v in (None, "lm_head.weight")), None)
    tied = config.text.tie_word_embeddings
    if head_key is not None and tied:
        # the original stores a copy of the embeddings as lm_head: verify it before tying
        if embed_key is None or not np.array_equal(src.get(head_key), src.get(embed_key)):
            raise ConversionError(f"{folder}: tie_word_embeddings is true but {head_key} differs "
                                  "from the token embeddings; refusing to drop it")
    if not tied and head_key is None:
        raise ConversionError(f"{folder}: tie_word_embeddings is false but there is no lm_head.weight")

    def tensors() -> Iterator[tuple[str, np.ndarray]]:
        for key, name in mapping.items():
            if key == head_key:
                if tied:
                    continue
                name = "lm_head.weight"
            arr = src.get(key)
            if is_linear_weight(name):
                arr = np.ascontiguousarray(arr.T)
            yield name, arr

    return config, layout, tensors()


def load_state_dict_any(folder):
    """(GotOcr2Config, {paddle_name: np.ndarray}) from any supported layout."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConversionError(f"{folder}: not a folder")
    config, _layout, tensors = _plan(folder)
    return config, dict(tensors)


# --------------------------------------------------------------------------- writing
_DTYPES = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int64"): "I64"}


def _write_safetensors_stream(path: Path, tensors: Iterable[tuple[str, np.ndarray]],
                              progress=None) -> int:
    """Stream tensors into ``path``: data goes to a side file first, then header + data."""
    header, offset = {}, 0
    data_path = path.with_suffix(".data.tmp")
    with open(data_path, "wb") as data:
        for name, arr in tensors:
            arr = np.ascontiguousarray(arr)
            if arr.dtype not in _DTYPES:
                arr = arr.astype(np.float32)
            raw = arr.tobytes()
            header[name] = {"dtype": _DTYPES[arr.dtype], "shape": list(arr.shape),
                            "data_offsets": [offset, offset + len(raw)]}
            data.write(raw)
            offset += len(raw)
            if progress is not None:
                progress.update(1)
    header["__metadata__"] = {"format": "np"}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    with open(path, "wb") as out, open(data_path, "rb") as data:
        out.write(struct.pack("<Q", len(blob)))
        out.write(blob)
        shutil.copyfileobj(data, out, 16 << 20)
    data_path.unlink()
    return len(header) - 1


def write_safetensors_atomic(folder, tensors, config, extra_files=(), config_dict=None,
                             progress=None) -> Path:
    """Write config + weights into a temp folder next to ``folder`` and rename it into place."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder}: exists and is not empty")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    try:
        _write_safetensors_stream(tmp / "model.safetensors", tensors, progress)
        if config_dict is not None:
            (tmp / "config.json").write_text(json.dumps(config_dict, indent=2) + "\n")
        else:
            config.save(tmp)
        for f in extra_files:
            shutil.copy2(f, tmp / Path(f).name)
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _progress(total: int, desc: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=desc, unit="tensor", leave=False)


def convert(src, out, to: str = "paddle") -> Path:
    """Convert ``src`` (any layout) to ``out`` in layout ``to`` (paddle | transformers | original)."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ConversionError(f"{src}: not a folder")
    config, layout, tensors = _plan(src)
    extra = [src / f for f in TOKENIZER_FILES if (src / f).is_file()]
    bar = _progress(len(SafetensorsSource(src).keys()), f"convert {layout} -> {to}")
    try:
        if to == "paddle":
            return write_safetensors_atomic(out, tensors, config, extra, progress=bar)
        if to == "transformers":
            def gen():
                for name, arr in tensors:
                    yield paddle_to_transformers_name(name), (arr.T if is_linear_weight(name) else arr)
            return write_safetensors_atomic(out, gen(), config, extra,
                                            config_dict=transformers_config_dict(config), progress=bar)
        if to == "original":
            def gen_orig():
                embed = None
                for name, arr in tensors:
                    arr = arr.T if is_linear_weight(name) else arr
                    if name == "language_model.embed_tokens.weight":
                        embed = arr
                    yield paddle_to_original_name(name), arr
                if config.text.tie_word_embeddings and embed is not None:
                    yield "lm_head.weight", embed  # the original stores the tied head as a copy
            return write_safetensors_atomic(out, gen_orig(), config, extra,
                                            config_dict=original_config_dict(config), progress=bar)
        raise ConversionError(f"unknown target layout {to!r} (paddle, transformers, original)")
    finally:
        if bar is not None:
            bar.close()


def transformers_config_dict(config) -> dict:
    import dataclasses

    v = dataclasses.asdict(config.vision)
    t = dataclasses.asdict(config.text)
    t.update(model_type="qwen2", hidden_act="silu", eos_token_id=config.eos_token_id,
             pad_token_id=config.pad_token_id, use_sliding_window=False)
    v.update(model_type="got_ocr2_vision", hidden_act="gelu")
    return {"architectures": ["GotOcr2ForConditionalGeneration"], "model_type": "got_ocr2",
            "image_token_index": config.image_token_id, "image_seq_length": config.image_seq_length,
            "tie_word_embeddings": config.text.tie_word_embeddings,
            "vision_config": v, "text_config": t}


def original_config_dict(config) -> dict:
    import dataclasses

    t = dataclasses.asdict(config.text)
    t.update(architectures=["GOTQwenForCausalLM"], model_type="GOT", hidden_act="silu",
             im_patch_token=config.image_token_id, im_start_token=config.img_start_token_id,
             im_end_token=config.img_end_token_id, use_im_start_end=True,
             eos_token_id=config.eos_token_id, bos_token_id=config.eos_token_id,
             pad_token_id=config.pad_token_id)
    return t
