"""Loading the non-transformer components of a diffusers-layout FLUX folder into Paddle.

The VAE is ppdiffusers' ``AutoencoderKL``; CLIP and T5 are ppdiffusers' own ports
(``ppdiffusers.transformers``). Their torch safetensors are converted while loading with the
same streaming loader as the transformer, so nothing is written next to the source folder
(ppdiffusers' ``convert_from_torch=True`` would cache a ``model_state.pdparams`` there).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .._compat import require_paddle
from ..models.loading import LayoutError, _weight_files, find_weights, load_state_streaming

paddle = require_paddle()

logger = logging.getLogger("ppflux")


def _text_weights(folder: Path) -> tuple[str, list[Path]]:
    for name, layout in (("model.safetensors", "torch"), ("paddle_model.safetensors", "paddle")):
        files = _weight_files(folder, name)
        if files:
            return layout, files
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    raise LayoutError(
        f"{folder}: no model.safetensors (or sharded index) found; folder holds "
        f"{present or 'nothing'}"
    )


def load_vae(folder: Path):
    from ppdiffusers import AutoencoderKL

    from ..models.loading import read_config

    config = read_config(folder)
    import inspect

    accepted = set(inspect.signature(AutoencoderKL.__init__).parameters)
    vae = AutoencoderKL(**{k: v for k, v in config.items() if k in accepted})
    layout, files = find_weights(folder)
    load_state_streaming(vae, files, layout)
    vae.eval()
    return vae


def _check_loaded(model, report, folder, tied=()):
    missing = [k for k in report["missing"] if k not in tied]
    if missing:
        raise LayoutError(f"{folder}: weights missing for {type(model).__name__}: {missing[:8]}")


def load_clip(folder: Path):
    from ppdiffusers.transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig.from_pretrained(str(folder))
    model = CLIPTextModel(config)
    layout, files = _text_weights(folder)

    # transformers 5 saves CLIPTextModel without the "text_model." prefix; 4.x (and the FLUX
    # repositories) with it. Accept both.
    def key_map(key):
        if key.startswith("text_model."):
            return key
        if key.startswith(("embeddings.", "encoder.", "final_layer_norm.")):
            return "text_model." + key
        return key

    report = load_state_streaming(model, files, layout, key_map=key_map, strict=False)
    _check_loaded(model, report, folder, tied=("text_model.embeddings.position_ids",))
    model.eval()
    return model


def load_t5(folder: Path):
    from ppdiffusers.transformers import T5Config, T5EncoderModel

    config = T5Config.from_pretrained(str(folder))
    model = T5EncoderModel(config)
    layout, files = _text_weights(folder)
    report = load_state_streaming(model, files, layout, strict=False)
    state = model.state_dict()
    if "encoder.embed_tokens.weight" in report["missing"] and "shared.weight" in state:
        state["encoder.embed_tokens.weight"].set_value(state["shared.weight"])
    _check_loaded(model, report, folder, tied=("encoder.embed_tokens.weight",))
    model.eval()
    return model


class JsonTokenizer:
    """A ``tokenizer.json`` (Hugging Face ``tokenizers``) with the calls the pipelines make.

    transformers 5 saves CLIP and T5 tokenizers as ``tokenizer.json`` only (no vocab.json /
    merges.txt / spiece.model), and it is the exact tokenizer transformers runs.
    """

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        self.folder = folder
        self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        cfg_path = folder / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
        self.model_max_length = int(cfg.get("model_max_length", 512))
        pad = cfg.get("pad_token", "<pad>")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        self.pad_token = pad
        self.pad_token_id = self._tok.token_to_id(pad) or 0

    def __call__(
        self,
        text,
        padding="max_length",
        max_length=None,
        truncation=False,
        return_tensors="np",
        **_ignored,
    ):
        import numpy as np

        texts = [text] if isinstance(text, str) else list(text)
        tok = self._tok
        tok.no_truncation()
        tok.no_padding()
        if truncation and max_length:
            tok.enable_truncation(max_length)
        if padding == "max_length" and max_length:
            tok.enable_padding(
                length=max_length, pad_id=self.pad_token_id, pad_token=self.pad_token
            )
        elif padding:
            tok.enable_padding(pad_id=self.pad_token_id, pad_token=self.pad_token)
        ids = [e.ids for e in tok.encode_batch(texts)]
        tok.no_truncation()
        tok.no_padding()
        return {"input_ids": np.asarray(ids, dtype=np.int64)}

    def batch_decode(self, ids):
        return self._tok.decode_batch([list(map(int, i)) for i in ids])

    def save_pretrained(self, folder):
        import shutil

        Path(folder).mkdir(parents=True, exist_ok=True)
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (self.folder / name).is_file():
                shutil.copy(self.folder / name, Path(folder) / name)


def load_tokenizer(folder: Path, kind: str):
    if kind == "clip":
        from ppdiffusers.transformers import CLIPTokenizer

        if (folder / "vocab.json").is_file():
            return CLIPTokenizer.from_pretrained(str(folder))
        if (folder / "tokenizer.json").is_file():
            return JsonTokenizer(folder)
        raise LayoutError(
            f"{folder}: CLIP tokenizer needs vocab.json + merges.txt or tokenizer.json"
        )
    from ppdiffusers.transformers import T5Tokenizer

    if not (folder / "spiece.model").is_file():
        if (folder / "tokenizer.json").is_file():
            return JsonTokenizer(folder)
        raise LayoutError(f"{folder}: T5 tokenizer needs spiece.model or tokenizer.json")
    # Built directly: T5Tokenizer.from_pretrained trips over the added_tokens.json that
    # transformers writes (it lists the <extra_id_N> tokens in reverse order).
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    return T5Tokenizer(
        sentencepiece_model_file=str(folder / "spiece.model"),
        extra_ids=int(cfg.get("extra_ids", 100)),
        model_max_length=int(cfg.get("model_max_length", 512)),
    )


def read_model_index(root: Path) -> dict:
    path = root / "model_index.json"
    if not path.is_file():
        hint = ""
        if (root / "config.json").is_file():
            hint = " (this looks like a single model folder, not a pipeline folder)"
        elif any(root.glob("*.safetensors")):
            hint = (
                " (a single-file checkpoint? convert it first: "
                "`ppflux convert --from-original FILE OUT_DIR`)"
            )
        raise LayoutError(f"{root}: no model_index.json, so not a diffusers pipeline folder{hint}")
    from .._errors import UserError, read_json_object

    try:
        return read_json_object(path, "model_index.json")
    except UserError as exc:
        raise LayoutError(exc.problem, exc.path) from None


def diffusers_class_name(name, module):
    return {
        "text_encoder": "CLIPTextModel",
        "text_encoder_2": "T5EncoderModel",
        "tokenizer": "CLIPTokenizer",
        "tokenizer_2": "T5TokenizerFast",
        "image_encoder": "SiglipVisionModel",
        "feature_extractor": "SiglipImageProcessor",
    }.get(name, type(module).__name__)


def save_text_encoder(module, folder: Path):
    """Config (transformers keys) + Paddle-layout weights in ``paddle_model.safetensors``."""
    from ..safetensors_io import save_numpy

    folder.mkdir(parents=True, exist_ok=True)
    module.config.save_pretrained(str(folder))
    save_numpy(
        folder / "paddle_model.safetensors",
        {k: v.astype("float32").numpy() for k, v in module.state_dict().items()},
        {"format": "paddle"},
    )


def save_vae(module, folder: Path):
    from ..models.loading import PADDLE_WEIGHTS
    from ..safetensors_io import save_numpy

    folder.mkdir(parents=True, exist_ok=True)
    module.save_config(str(folder))
    save_numpy(
        folder / PADDLE_WEIGHTS,
        {k: v.astype("float32").numpy() for k, v in module.state_dict().items()},
        {"format": "paddle"},
    )
