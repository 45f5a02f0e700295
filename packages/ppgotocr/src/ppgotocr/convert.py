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
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ._atomic import atomic_dir, prepare_output
from ._errors import UserError, read_json_object
from ._safetensors import FLOAT_CODES, PlannedTensor, SafetensorsReader, StreamingWriter
from .configuration_got_ocr2 import (
    GotOcr2Config,
    GotOcr2TextConfig,
    GotOcr2VisionConfig,
    parameter_shapes,
)
from .layouts import (  # noqa: F401  (re-exported: the converter's name maps)
    original_config_dict,
    original_to_paddle_name,
    paddle_to_original_name,
    paddle_to_transformers_name,
    transformers_config_dict,
    transformers_to_paddle_name,
)

ORIGINAL_CONFIG_KEYS = ("im_patch_token", "im_start_token", "im_end_token")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "qwen.tiktoken",
)
_LINEAR_LEAVES = {
    "qkv",
    "proj",
    "lin1",
    "lin2",
    "multimodal_projector",
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "lm_head",
}


class ConversionError(UserError, ValueError):
    """A source folder that cannot be converted: the message names the file and the problem."""

    def __init__(self, problem: str, path=None):
        super().__init__(problem, path)


def is_linear_weight(paddle_name: str) -> bool:
    parts = paddle_name.split(".")
    return parts[-1] == "weight" and len(parts) >= 2 and parts[-2] in _LINEAR_LEAVES


# --------------------------------------------------------------------------- reading sources
class SafetensorsSource:
    """All tensors of a folder (single file or sharded index), headers checked before reading.

    Every header claim (dtype, shape, byte range) is checked against the file before any
    tensor is allocated, so a lying or truncated file is an error, not a huge allocation.
    """

    def __init__(self, folder: Path):
        folder = Path(folder)
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            weight_map = read_json_object(index, "safetensors index").get("weight_map")
            if not isinstance(weight_map, dict) or not all(
                isinstance(v, str) for v in weight_map.values()
            ):
                raise ConversionError("'weight_map' must map tensor names to file names", index)
            files = sorted(set(weight_map.values()))
        elif (folder / "model.safetensors").is_file():
            files = ["model.safetensors"]
        else:
            raise ConversionError(
                "no model.safetensors or model.safetensors.index.json "
                "(PyTorch .bin checkpoints are not read; re-save as "
                "safetensors)",
                folder,
            )
        self.folder = folder
        self.readers: dict[str, SafetensorsReader] = {}
        self.key_to_file: dict[str, str] = {}
        for name in files:
            path = folder / name
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ConversionError(f"shard {name!r} lies outside the folder", folder)
            reader = SafetensorsReader(path)
            self.readers[name] = reader
            for key in reader.keys():
                if key in self.key_to_file:
                    raise ConversionError(
                        f"tensor {key!r} is stored twice ({self.key_to_file[key]} and {name})",
                        folder,
                    )
                self.key_to_file[key] = name

    def keys(self) -> list[str]:
        return list(self.key_to_file)

    def path(self, key: str) -> Path:
        return self.folder / self.key_to_file[key]

    def shape(self, key: str) -> tuple:
        if key not in self.key_to_file:
            raise ConversionError(f"tensor {key!r} is missing", self.folder)
        return self.readers[self.key_to_file[key]].tensors[key].shape

    def dtype(self, key: str) -> str:
        return self.readers[self.key_to_file[key]].tensors[key].dtype

    def get(self, key: str) -> np.ndarray:
        """float32 array; bf16 / f16 / f64 are widened or narrowed exactly as numpy does."""
        return self.readers[self.key_to_file[key]].read_float32(key)


def _open_source(folder: Path) -> SafetensorsSource:
    return SafetensorsSource(folder)


def _read_header(path: Path) -> tuple[int, dict]:
    """(header length, header dict) of a safetensors file (for tests and tools)."""
    reader = SafetensorsReader(path)
    header = {k: {"dtype": t.dtype, "shape": list(t.shape)} for k, t in reader.tensors.items()}
    return 0, header


def _load_config_json(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        raise ConversionError("no config.json", folder)
    try:
        return read_json_object(path, "config")
    except UserError as exc:
        if "not valid JSON" in exc.problem:
            raise ConversionError("invalid JSON: " + exc.problem.split(": ", 1)[-1], path) from None
        raise


def detect_layout(folder) -> str:
    folder = Path(folder)
    cfg = _load_config_json(folder)
    if cfg.get("format") == "ppgotocr":
        return "ppgotocr"
    if cfg.get("model_type") == "got_ocr2":
        return "transformers"
    if any(k in cfg for k in ORIGINAL_CONFIG_KEYS) or cfg.get("model_type") == "GOT":
        return "original"
    raise ConversionError(
        "neither a ppgotocr, a transformers got_ocr2 nor an original GOT config",
        folder / "config.json",
    )


# --------------------------------------------------------------------------- configs
def _dataclass_kwargs(cls, values: dict) -> dict:
    return {k: v for k, v in values.items() if k in cls.__dataclass_fields__}


def _config_from_transformers(cfg: dict, folder: Path):
    path = folder / "config.json"
    for part in ("vision_config", "text_config"):
        if not isinstance(cfg.get(part) or {}, dict):
            raise ConversionError(f"'{part}' must be an object", path)
    vc = _dataclass_kwargs(GotOcr2VisionConfig, cfg.get("vision_config") or {})
    tc_src = dict(cfg.get("text_config") or {})
    if "rope_theta" not in tc_src and isinstance(tc_src.get("rope_parameters"), dict):
        tc_src["rope_theta"] = tc_src["rope_parameters"].get("rope_theta", 1000000.0)
    tc = _dataclass_kwargs(GotOcr2TextConfig, tc_src)
    tc["tie_word_embeddings"] = cfg.get(
        "tie_word_embeddings", tc_src.get("tie_word_embeddings", True)
    )
    if isinstance(vc.get("global_attn_indexes"), tuple):
        vc["global_attn_indexes"] = list(vc["global_attn_indexes"])
    config = GotOcr2Config(vision=GotOcr2VisionConfig(**vc), text=GotOcr2TextConfig(**tc))
    config.image_token_id = cfg.get("image_token_index", cfg.get("image_token_id"))
    config.eos_token_id = _first(tc_src.get("eos_token_id", cfg.get("eos_token_id")))
    config.pad_token_id = tc_src.get("pad_token_id", cfg.get("pad_token_id"))
    _fill_ids_from_files(config, folder)
    return config.validate(path)


def _first(v):
    return v[0] if isinstance(v, list) and v else v


def _fill_ids_from_files(config, folder: Path) -> None:
    """Token ids missing from the model config come from generation_config / tokenizer.json."""
    gen = folder / "generation_config.json"
    if gen.is_file():
        g = read_json_object(gen, "generation config")
        if config.eos_token_id is None:
            config.eos_token_id = _first(g.get("eos_token_id"))
        if config.pad_token_id is None:
            config.pad_token_id = g.get("pad_token_id")
    tok = folder / "tokenizer.json"
    if tok.is_file():
        added_list = read_json_object(tok, "tokenizer").get("added_tokens", [])
        if not isinstance(added_list, list):
            raise ConversionError("'added_tokens' must be a list", tok)
        added = {t.get("content"): t.get("id") for t in added_list if isinstance(t, dict)}
        for attr, content in (
            ("img_start_token_id", "<img>"),
            ("img_end_token_id", "</img>"),
            ("image_token_id", "<imgpad>"),
            ("eos_token_id", "<|endoftext|>"),
        ):
            if getattr(config, attr) is None and content in added:
                setattr(config, attr, added[content])
    if config.pad_token_id is None:
        config.pad_token_id = config.eos_token_id


def _config_from_original(cfg: dict, src: SafetensorsSource, folder: Path):
    """Text dims from config.json; vision dims (hard-coded in the original code) from shapes."""
    tc = _dataclass_kwargs(GotOcr2TextConfig, cfg)
    keys = src.keys()
    p = "model.vision_tower_high."
    pos = src.shape(p + "pos_embed")
    patch = src.shape(p + "patch_embed.proj.weight")
    blocks = sorted(
        {int(m.group(1)) for k in keys if (m := re.match(re.escape(p) + r"blocks\.(\d+)\.", k))}
    )
    if not blocks or len(pos) != 4 or len(patch) != 4:
        raise ConversionError(
            "the vision tower tensors do not have the original GOT shapes", src.folder
        )
    rel = [src.shape(f"{p}blocks.{i}.attn.rel_pos_h") for i in blocks]
    side = pos[1]
    head_dim = rel[0][1]
    global_idx = [i for i, r in zip(blocks, rel) if r[0] == 2 * side - 1]
    window = [r[0] for r in rel if r[0] != 2 * side - 1]
    vc = GotOcr2VisionConfig(
        hidden_size=pos[3],
        output_channels=src.shape(p + "neck.0.weight")[0],
        num_hidden_layers=len(blocks),
        num_attention_heads=max(1, pos[3] // max(1, head_dim)),
        num_channels=patch[1],
        image_size=side * patch[2],
        patch_size=patch[2],
        window_size=(window[0] + 1) // 2 if window else 14,
        global_attn_indexes=global_idx,
        mlp_dim=src.shape(p + "blocks.0.mlp.lin1.weight")[0],
        qkv_bias=(p + "blocks.0.attn.qkv.bias") in src.key_to_file,
    )
    config = GotOcr2Config(vision=vc, text=GotOcr2TextConfig(**tc))
    config.image_token_id = cfg.get("im_patch_token")
    config.img_start_token_id = cfg.get("im_start_token")
    config.img_end_token_id = cfg.get("im_end_token")
    config.eos_token_id = _first(cfg.get("eos_token_id"))
    config.pad_token_id = cfg.get("pad_token_id")
    _fill_ids_from_files(config, folder)
    return config.validate(folder / "config.json")


# --------------------------------------------------------------------------- checks
def check_tokenizer(folder: Path, config) -> None:
    """The folder's tokenizer files parse and carry GOT's special tokens with the config's ids."""
    for name in ("tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        if (folder / name).is_file():
            read_json_object(folder / name, name)
    tok_json, tiktoken = folder / "tokenizer.json", folder / "qwen.tiktoken"
    if not tok_json.is_file() and not tiktoken.is_file():
        raise ConversionError(
            "no tokenizer.json or qwen.tiktoken: GOT needs its tokenizer next to the weights",
            folder,
        )
    from .tokenizer import GotOcrTokenizer

    if tok_json.is_file():
        read_json_object(tok_json, "tokenizer")  # UTF-8 JSON object, else a clear error
    try:
        GotOcrTokenizer.from_pretrained(folder, config)
    except UserError:
        raise
    except Exception as exc:  # tokenizers' own parse errors
        raise ConversionError(
            f"not a usable tokenizer: {exc}", tok_json if tok_json.is_file() else tiktoken
        ) from None


def _check_shapes(entries: list, config, folder: Path) -> None:
    expected = parameter_shapes(config)
    have = {e.name: e for e in entries}
    missing = sorted(set(expected) - set(have))
    unexpected = sorted(set(have) - set(expected))
    if missing:
        raise ConversionError(
            f"{len(missing)} tensor(s) the config needs are missing, e.g. {', '.join(missing[:3])}",
            folder,
        )
    if unexpected:
        raise ConversionError(
            f"{len(unexpected)} tensor(s) do not belong to the configured "
            f"model, e.g. {', '.join(unexpected[:3])}",
            folder,
        )
    for e in entries:
        want = expected[e.name]
        if tuple(e.shape) != want:
            hint = " (stored transposed?)" if tuple(reversed(e.shape)) == want else ""
            raise ConversionError(
                f"tensor {e.key!r} has shape {list(e.source_shape)}, the "
                f"config needs {list(want if not e.transpose else want[::-1])}"
                f"{hint}",
                e.path,
            )


class _Entry:
    """One output tensor: Paddle name, source key, whether to transpose, shapes."""

    def __init__(self, name: str, key: str, transpose: bool, src: SafetensorsSource):
        self.name, self.key, self.transpose = name, key, transpose
        self.source_shape = tuple(src.shape(key))
        self.shape = self.source_shape[::-1] if transpose else self.source_shape
        self.path = src.path(key)
        if src.dtype(key) not in FLOAT_CODES:
            raise ConversionError(
                f"tensor {key!r} is {src.dtype(key)}, a float was expected", self.path
            )


# --------------------------------------------------------------------------- plan
class Plan:
    """What a conversion will write: config, layout and one entry per Paddle tensor."""

    def __init__(self, folder: Path, config, layout: str, src: SafetensorsSource, entries):
        self.folder, self.config, self.layout, self.src = folder, config, layout, src
        self.entries: list[_Entry] = entries

    def arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        """(paddle name, float32 array in Paddle layout), one tensor in memory at a time."""
        for e in self.entries:
            arr = self.src.get(e.key)
            if not np.isfinite(arr).all():
                raise ConversionError(f"tensor {e.key!r} holds NaN or infinite values", e.path)
            yield e.name, (np.ascontiguousarray(arr.T) if e.transpose else arr)


def make_plan(folder, tokenizer: bool = True) -> Plan:
    """Read and check a source folder: config values, tensor names and shapes, and (with
    ``tokenizer``) the tokenizer files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConversionError("not a folder" if folder.exists() else "no such folder", folder)
    layout = detect_layout(folder)
    cfg = _load_config_json(folder)
    src = _open_source(folder)
    if layout == "ppgotocr":
        config = GotOcr2Config.from_dict(cfg, folder / "config.json")
        entries = [_Entry(k, k, False, src) for k in src.keys()]
        _check_shapes(entries, config, folder)
        if tokenizer:
            check_tokenizer(folder, config)
        return Plan(folder, config, layout, src, entries)
    if layout == "transformers":
        config = _config_from_transformers(cfg, folder)
        mapping = {k: transformers_to_paddle_name(k) for k in src.keys()}
    else:
        config = _config_from_original(cfg, src, folder)
        mapping = {k: original_to_paddle_name(k) for k in src.keys()}
    for name, value in (
        ("image_token_id (<imgpad>)", config.image_token_id),
        ("eos_token_id", config.eos_token_id),
    ):
        if value is None:
            raise ConversionError(
                f"{name} is not in config.json, generation_config.json or tokenizer.json", folder
            )
    embed_key = next(
        (k for k, v in mapping.items() if v == "language_model.embed_tokens.weight"), None
    )
    head_key = next((k for k, v in mapping.items() if v in (None, "lm_head.weight")), None)
    tied = config.text.tie_word_embeddings
    if head_key is not None and tied:
        # the original stores a copy of the embeddings as lm_head: verify it before tying
        if (
            embed_key is None
            or src.shape(head_key) != src.shape(embed_key)
            or not np.array_equal(src.get(head_key), src.get(embed_key))
        ):
            raise ConversionError(
                f"tie_word_embeddings is true but {head_key} differs from the "
                "token embeddings; refusing to drop it",
                folder,
            )
    if not tied and head_key is None:
        raise ConversionError("tie_word_embeddings is false but there is no lm_head.weight", folder)
    entries = []
    for key, name in mapping.items():
        if key == head_key:
            if tied:
                continue
            name = "lm_head.weight"
        entries.append(_Entry(name, key, is_linear_weight(name), src))
    _check_shapes(entries, config, folder)
    if tokenizer:
        check_tokenizer(folder, config)
    return Plan(folder, config, layout, src, entries)


def _plan(folder: Path):
    plan = make_plan(folder, tokenizer=False)
    return plan.config, plan.layout, plan.arrays()


def load_state_dict_any(folder):
    """(GotOcr2Config, {paddle_name: np.ndarray}) from any supported layout, checked."""
    config, _layout, tensors = _plan(Path(folder))
    return config, dict(tensors)


# --------------------------------------------------------------------------- writing
def write_model_folder(
    folder,
    planned: list[PlannedTensor],
    arrays,
    config_dict: dict,
    extra_files=(),
    overwrite: bool = False,
    progress=None,
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (+ tokenizer files) as one atomic folder.

    The tensors stream into the file in ``planned`` order, one in memory at a time; the folder
    appears only when complete (see ``_atomic``).
    """
    with atomic_dir(folder, overwrite=overwrite) as tmp:
        with StreamingWriter(tmp / "model.safetensors", planned, {"format": "np"}) as writer:
            for name, arr in arrays:
                writer.write(name, np.ascontiguousarray(arr, dtype=np.float32))
                if progress is not None:
                    progress.update(1)
        (tmp / "config.json").write_text(json.dumps(config_dict, indent=2) + "\n")
        for f in extra_files:
            shutil.copyfile(f, tmp / Path(f).name)
    return Path(folder)


def write_safetensors_atomic(
    folder,
    tensors,
    config,
    extra_files=(),
    config_dict=None,
    progress=None,
    overwrite: bool = False,
) -> Path:
    """In-memory tensors (``(name, array)`` pairs) as a ppgotocr-style folder, atomically."""
    tensors = [(n, np.ascontiguousarray(a, dtype=np.float32)) for n, a in tensors]
    planned = [PlannedTensor(n, "F32", tuple(a.shape)) for n, a in tensors]
    return write_model_folder(
        folder,
        planned,
        iter(tensors),
        config_dict if config_dict is not None else config.to_dict(),
        extra_files,
        overwrite,
        progress,
    )


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="tensor", leave=False)


def convert(src, out, to: str = "paddle", overwrite: bool = False, progress: bool = True) -> Path:
    """Convert ``src`` (any layout) to ``out`` in layout ``to`` (paddle | transformers | original).

    Everything is checked before anything is written (config values, tensor shapes against
    the config, the tokenizer); an existing non-empty ``out`` is refused unless ``overwrite``
    and replaced only once the new folder is complete.
    """
    if to not in ("paddle", "transformers", "original"):
        raise ConversionError(f"unknown target layout {to!r} (paddle, transformers, original)")
    src, out = Path(src), Path(out)
    prepare_output(out, overwrite=overwrite)  # refuse before reading anything large
    plan = make_plan(src)
    config = plan.config
    extra = [src / f for f in TOKENIZER_FILES if (src / f).is_file()]
    if to == "paddle":
        names = [(e.name, e.shape) for e in plan.entries]
        arrays = plan.arrays()
        config_dict = config.to_dict()
    elif to == "transformers":
        names = [
            (
                paddle_to_transformers_name(e.name),
                e.shape[::-1] if is_linear_weight(e.name) else e.shape,
            )
            for e in plan.entries
        ]
        arrays = (
            (paddle_to_transformers_name(n), a.T if is_linear_weight(n) else a)
            for n, a in plan.arrays()
        )
        config_dict = transformers_config_dict(config)
    else:
        names = [
            (
                paddle_to_original_name(e.name),
                e.shape[::-1] if is_linear_weight(e.name) else e.shape,
            )
            for e in plan.entries
        ]
        tie_shape = next((s for (n, s) in names if n == "model.embed_tokens.weight"), None)
        if config.text.tie_word_embeddings and tie_shape is not None:
            names.append(("lm_head.weight", tie_shape))  # the original stores the tied head

        def gen_orig():
            embed = None
            for name, arr in plan.arrays():
                arr = arr.T if is_linear_weight(name) else arr
                if name == "language_model.embed_tokens.weight":
                    embed = arr
                yield paddle_to_original_name(name), arr
            if config.text.tie_word_embeddings and embed is not None:
                yield "lm_head.weight", embed

        arrays = gen_orig()
        config_dict = original_config_dict(config)
    planned = [PlannedTensor(n, "F32", tuple(s)) for n, s in names]
    bar = _progress(len(planned), f"convert {plan.layout} -> {to}") if progress else None
    try:
        return write_model_folder(out, planned, arrays, config_dict, extra, overwrite, bar)
    finally:
        if bar is not None:
            bar.close()
