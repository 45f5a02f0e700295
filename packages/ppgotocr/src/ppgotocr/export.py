"""Paddle Inference export (PIR programs) and a predictor-backed model for ``ocr --inference``.

Two programs are written:

* ``vision``: ``pixel_values [1, 3, S, S]`` -> ``image_features [1, T, D]`` (vision tower and
  projector; one view per call, the runner loops over views).
* ``decoder``: one step of the Qwen2 decoder with a KV cache. Inputs ``input_ids [B, L]``,
  ``embeds_override [B, L, D]`` and ``override_mask [B, L, 1]`` (image features replace the
  token embeddings where the mask is 1), ``attention_mask [B, P + L]``, ``position_ids
  [B, L]``, ``past_key`` / ``past_value [layers, B, kv_heads, P, head_dim]``; outputs the last
  position's float32 logits ``[B, vocab]`` and the grown cache. Batch, length and cache
  length are dynamic; prefill passes a one-slot cache whose mask entry is 0, so one program
  (and one copy of the weights) serves both phases. (A preallocated fixed-shape cache written
  in place by gather/where was tried in 0.3.0 and measured slower: see the README.)

Paddle 3.3.1's CPU predictor with oneDNN can return silently wrong numbers, and where it is
right it is not always faster. The export stores a probe (the dygraph model's inputs and
outputs for one view and for every decoder call of a left-padded two-row prefill with image
features and two decode steps). :class:`InferenceModel` checks each program's candidate
configurations (plain CPU kernels, oneDNN) against the probe in a separate process, then runs
the fastest verified one (``inference_kernels``); the choice is made at export and recorded.
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

from ._atomic import atomic_dir, prepare_output
from ._errors import UserError, read_json_object
from ._paddle import native_stdout_to_stderr, require_paddle
from .configuration_got_ocr2 import GotOcr2Config

META_NAME = "ppgotocr_inference.json"
PROBE_NAME = "probe.npz"
FORMAT_TAG = "ppgotocr-inference"
EXPORT_VERSION = 2  # 2: the probe holds every decoder call's inputs and outputs
PROBE_RTOL = 1e-4  # of the largest magnitude; fp32 agrees to ~1e-6, the oneDNN defect is O(1)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "qwen.tiktoken",
    "generation_config.json",
    "special_tokens_map.json",
)


def _programs(model):
    paddle = require_paddle()
    nn = paddle.nn

    class VisionProgram(nn.Layer):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            m = self.model
            return m.multi_modal_projector(m.vision_tower(pixel_values))

    class DecoderProgram(nn.Layer):
        def __init__(self, model):
            super().__init__()
            self.model = model
            self.num_layers = model.config.text.num_hidden_layers

        def forward(
            self,
            input_ids,
            embeds_override,
            override_mask,
            attention_mask,
            position_ids,
            past_key,
            past_value,
        ):
            lm = self.model.language_model
            embeds = lm.embed_tokens(input_ids)
            x = paddle.where(override_mask > 0.5, embeds_override, embeds)
            length = paddle.shape(input_ids)[1]
            total = paddle.shape(attention_mask)[1]
            q_pos = paddle.arange(length, dtype="int64").unsqueeze(1) + (total - length)
            k_pos = paddle.arange(total, dtype="int64").unsqueeze(0)
            causal = paddle.where(
                k_pos > q_pos,
                paddle.full([1], float("-inf"), "float32"),
                paddle.zeros([1], "float32"),
            )
            pad = (1.0 - attention_mask.astype("float32"))[:, None, None, :] * -1e30
            mask = paddle.clip(causal[None, None] + pad, min=float(np.finfo(np.float32).min))
            cos, sin = lm.rotary(position_ids)
            keys, values = [], []
            for i, layer in enumerate(lm.layers):
                x, (k, v) = layer(x, cos, sin, mask, (past_key[i], past_value[i]))
                keys.append(k)
                values.append(v)
            hidden = lm.norm(x)[:, -1, :]
            return self.model.logits(hidden), paddle.stack(keys), paddle.stack(values)

    return VisionProgram(model), DecoderProgram(model)


def _cache_spec(config: GotOcr2Config):
    t = config.text
    return (t.num_hidden_layers, t.num_key_value_heads, t.hidden_size // t.num_attention_heads)


def _probe_inputs(config: GotOcr2Config, seed: int = 0) -> dict:
    """One view, then a left-padded two-row prefill (one row with image features) and two
    decode steps."""
    rng = np.random.default_rng(seed)
    s = config.vision.image_size
    pixels = rng.standard_normal((1, 3, s, s)).astype(np.float32)
    vocab = config.text.vocab_size

    def ids(shape):  # random text tokens, never the image token
        out = rng.integers(0, vocab, shape).astype(np.int64)
        out[out == config.image_token_id] = 0
        return out

    return {
        "pixel_values": pixels,
        "prompts": [ids(5).tolist(), ids(9).tolist()],
        "steps": ids((2, 2)),
    }


class _Stepper:
    """Runs prefill / decode through a ``step`` callable (dygraph or predictor), carrying the
    stacked cache, the mask and positions exactly as ``greedy_generate`` expects."""

    def __init__(self, step, config: GotOcr2Config):
        self.step, self.config = step, config
        self.keys = self.values = None

    def prefill(
        self, ids: np.ndarray, mask: np.ndarray, override: np.ndarray, override_mask: np.ndarray
    ) -> np.ndarray:
        layers, kv, hd = _cache_spec(self.config)
        b = ids.shape[0]
        zeros = np.zeros((layers, b, kv, 1, hd), np.float32)
        full_mask = np.concatenate([np.zeros((b, 1), np.int64), mask], axis=1)
        pos = np.cumsum(mask, axis=-1) - 1
        pos = np.where(mask.astype(bool), pos, 1).astype(np.int64)
        logits, self.keys, self.values = self.step(
            ids.astype(np.int64), override, override_mask, full_mask, pos, zeros, zeros
        )
        return logits

    def decode(self, tokens: np.ndarray, mask: np.ndarray, positions: np.ndarray) -> np.ndarray:
        b = tokens.shape[0]
        d = self.config.text.hidden_size
        full_mask = np.concatenate([np.zeros((b, 1), np.int64), mask], axis=1)
        logits, self.keys, self.values = self.step(
            tokens.astype(np.int64),
            np.zeros((b, tokens.shape[1], d), np.float32),
            np.zeros((b, tokens.shape[1], 1), np.float32),
            full_mask,
            positions.astype(np.int64),
            self.keys,
            self.values,
        )
        return logits


def _splice(ids: np.ndarray, features: np.ndarray | None, image_token_id: int, d: int):
    """(override [B, L, D], override_mask [B, L, 1]) with the features over the image tokens."""
    override = np.zeros(ids.shape + (d,), np.float32)
    where = ids == image_token_id
    n = int(where.sum())
    feats = np.zeros((0, d), np.float32) if features is None else features.reshape(-1, d)
    if n != feats.shape[0]:
        raise ValueError(f"{n} image tokens in the prompt but {feats.shape[0]} feature vectors")
    override[where] = feats
    return override, where[..., None].astype(np.float32)


def _run_probe(vision_step, stepper: _Stepper, probe: dict, config: GotOcr2Config) -> list:
    features = vision_step(probe["pixel_values"])
    short, long = probe["prompts"]
    width = len(long) + config.image_seq_length
    rows = [short, long[:4] + [config.image_token_id] * config.image_seq_length + long[4:]]
    ids = np.full((2, width), config.pad_token_id or 0, np.int64)
    mask = np.zeros((2, width), np.int64)
    for r, row in enumerate(rows):
        ids[r, width - len(row) :] = row
        mask[r, width - len(row) :] = 1
    override, omask = _splice(ids, features, config.image_token_id, config.text.hidden_size)
    outs = [features, stepper.prefill(ids, mask, override, omask)]
    for tokens in probe["steps"]:
        mask = np.concatenate([mask, np.ones((2, 1), np.int64)], axis=1)
        pos = (mask.sum(-1, keepdims=True) - 1).astype(np.int64)
        outs.append(stepper.decode(tokens[:, None], mask, pos))
    return outs


class _Recorder:
    """Wraps a step callable and keeps every call's inputs and outputs (the probe's cases)."""

    def __init__(self, step):
        self.step, self.calls = step, []

    def __call__(self, *arrays):
        outs = [np.asarray(o) for o in self.step(*arrays)]
        self.calls.append(([np.asarray(a).copy() for a in arrays], [o.copy() for o in outs]))
        return outs


def save_probe(path: Path, pixel_values, features, calls) -> None:
    arrays = {"vision_in_0": pixel_values, "vision_out_0": features}
    for i, (ins, outs) in enumerate(calls):
        arrays.update({f"decoder_{i}_in_{j}": a for j, a in enumerate(ins)})
        arrays.update({f"decoder_{i}_out_{j}": a for j, a in enumerate(outs)})
    np.savez(path, **arrays)


def load_probe(path: Path) -> dict:
    """``{"vision": [case], "decoder": [case, ...]}`` with ``case = (feeds, reference)``."""
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}

    def case(stem: str):
        ins = sum(k.startswith(f"{stem}_in_") for k in data)
        outs = sum(k.startswith(f"{stem}_out_") for k in data)
        return (
            [data[f"{stem}_in_{j}"] for j in range(ins)],
            [data[f"{stem}_out_{j}"] for j in range(outs)],
        )

    decoder, i = [], 0
    while f"decoder_{i}_in_0" in data:
        decoder.append(case(f"decoder_{i}"))
        i += 1
    return {"vision": [case("vision")], "decoder": decoder}


def choose_kernels(folder: Path, probe: dict, mode: str, threads: int) -> dict:
    """Per program: the verified configuration, the fastest when several are verified
    (``inference_kernels.choose_program``). The decoder is verified on every probe call
    (prefill and decode steps) and timed on the decode steps."""
    from .inference_kernels import choose_program

    programs = {}
    for name in ("vision", "decoder"):
        cases = probe[name]
        timing = [c for c in cases if c[0][0].shape[1] == 1] if name == "decoder" else None
        with native_stdout_to_stderr(True, discard=True):
            programs[name] = choose_program(
                str(folder / name),
                cases,
                timing_cases=timing or None,
                mode=mode,
                threads=threads,
                tolerance=PROBE_RTOL,
                repeats=5 if name == "decoder" else 2,
                warmup=1,
            )
    return programs


def export_inference(
    model_dir, out_dir, overwrite: bool = False, threads: int = 1, choose: bool = True
) -> Path:
    """Export ``model_dir`` (any supported layout) to a Paddle Inference folder; with
    ``choose``, verify and time each program's kernels here and record the choice."""
    out_dir = prepare_output(out_dir, overwrite=overwrite)
    paddle = require_paddle()
    from .convert import check_tokenizer
    from .modeling_got_ocr2 import GotOcr2ForConditionalGeneration, VisionAttention

    model_dir = Path(model_dir)
    model = GotOcr2ForConditionalGeneration.from_pretrained(model_dir)
    config = model.config
    if any((model_dir / f).is_file() for f in ("tokenizer.json", "qwen.tiktoken")):
        check_tokenizer(model_dir, config)
    else:
        print(
            f"note: {model_dir} has no tokenizer; the export runs token ids "
            "(GotOcrPipeline needs tokenizer.json or qwen.tiktoken beside it)",
            file=sys.stderr,
        )
    vision, decoder = _programs(model)
    vision.eval()
    decoder.eval()

    def eager_vision(pixels):
        with paddle.no_grad():
            return vision(paddle.to_tensor(pixels)).numpy()

    def eager_step(*arrays):
        with paddle.no_grad():
            return [o.numpy() for o in decoder(*(paddle.to_tensor(a) for a in arrays))]

    probe = _probe_inputs(config)
    recorder = _Recorder(eager_step)
    features = _run_probe(eager_vision, _Stepper(recorder, config), probe, config)[0]

    layers, kv, hd = _cache_spec(config)
    d, s = config.text.hidden_size, config.vision.image_size
    spec = paddle.static.InputSpec
    vision_spec = [spec([1, config.vision.num_channels, s, s], "float32", "pixel_values")]
    decoder_spec = [
        spec([None, None], "int64", "input_ids"),
        spec([None, None, d], "float32", "embeds_override"),
        spec([None, None, 1], "float32", "override_mask"),
        spec([None, None], "int64", "attention_mask"),
        spec([None, None], "int64", "position_ids"),
        spec([layers, None, kv, None, hd], "float32", "past_key"),
        spec([layers, None, kv, None, hd], "float32", "past_value"),
    ]
    chunking = VisionAttention.chunk_queries
    VisionAttention.chunk_queries = False  # one matmul per map: shapes must not depend on data
    try:
        with atomic_dir(out_dir, overwrite=overwrite) as tmp:
            with native_stdout_to_stderr(), warnings.catch_warnings():
                # tracing warns about tensor attributes the program does not use
                warnings.filterwarnings("ignore", message="Tensor do not have 'place'")
                for name, layer, input_spec in (
                    ("vision", vision, vision_spec),
                    ("decoder", decoder, decoder_spec),
                ):
                    static = paddle.jit.to_static(layer, input_spec=input_spec, full_graph=True)
                    paddle.jit.save(static, str(tmp / name))
            save_probe(tmp / PROBE_NAME, probe["pixel_values"], features, recorder.calls)
            cfg = config.to_dict()
            cfg["format"] = FORMAT_TAG
            (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
            for f in TOKENIZER_FILES:
                if (model_dir / f).is_file():
                    shutil.copyfile(model_dir / f, tmp / f)
            files = {
                p.stem: p.name
                for p in tmp.iterdir()
                if p.suffix in (".json", ".pdmodel") and p.stem in ("vision", "decoder")
            }
            meta = {
                "export_version": EXPORT_VERSION,
                "programs": files,
                "probe_rtol": PROBE_RTOL,
                "paddle_version": paddle.__version__,
            }
            (tmp / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
            if choose:
                from .inference_kernels import machine_signature, record

                programs = choose_kernels(tmp, load_probe(tmp / PROBE_NAME), "auto", threads)
                if all(p.get("ok") for p in programs.values()):
                    record(tmp, machine_signature(threads, "auto"), programs)
    finally:
        VisionAttention.chunk_queries = chunking
    return out_dir


class InferenceModel:
    """A ``GotOcr2ForConditionalGeneration`` look-alike backed by two Paddle Inference
    predictors whose kernels were verified against the stored probe.

    ``mode``: ``"auto"`` (plain CPU kernels and oneDNN are both checked against the probe in a
    separate process; the faster verified one runs, oneDNN only when more than 5 % faster),
    ``"onednn"`` or ``"plain"`` (only that one, still checked). The choice is read from the
    export's ``kernels.json`` when it was made on this machine with the same Paddle, threads and
    mode; otherwise it is made now and recorded there when the folder is writable.
    """

    def __init__(self, folder, mode: str = "auto", threads: int = 1, verbose: bool = False):
        from .inference_kernels import MODES, load_recorded, machine_signature, record

        if mode not in MODES:
            raise ValueError("mode must be auto, onednn or plain")
        self.paddle = require_paddle()
        self.dir = Path(folder)
        meta_path = self.dir / META_NAME
        if not meta_path.is_file():
            raise UserError(
                f"not a Paddle Inference export (no {META_NAME}); make one with "
                "`ppgotocr export MODEL OUT`",
                self.dir,
            )
        self.meta = read_json_object(meta_path, "export description")
        if self.meta.get("export_version") != EXPORT_VERSION:
            raise UserError(
                "exported by an older ppgotocr (its probe does not hold the decoder calls the "
                "kernel check needs); "
                "export the model again with `ppgotocr export MODEL OUT --overwrite`",
                self.dir,
            )
        cfg = read_json_object(self.dir / "config.json", "config")
        cfg["format"] = "ppgotocr"
        self.config = GotOcr2Config.from_dict(cfg, self.dir / "config.json")
        self.threads, self.verbose = threads, verbose
        signature = machine_signature(threads, mode)
        probe = load_probe(self.dir / PROBE_NAME)
        self.choices = load_recorded(self.dir, signature)
        self.recorded = self.choices is not None
        if self.recorded and not self._start(probe, mode):
            # recorded on this machine, but its predictors no longer reproduce the probe
            self.recorded = False
        if not self.recorded:
            self.choices = choose_kernels(self.dir, probe, mode, threads)
            for name, choice in self.choices.items():
                if not choice.get("ok"):
                    raise UserError(
                        f"no predictor configuration reproduces the exported probe "
                        f"of the {name} program: {choice.get('verified')}",
                        self.dir,
                    )
            if not self._start(probe, mode):
                raise UserError(
                    f"the predictors verified in a separate process disagree with the exported "
                    f"probe in this one: {self.probe_diffs}",
                    self.dir,
                )
            record(self.dir, signature, self.choices)
        self.probe_diff = max(self.probe_diffs.values())

    def _start(self, probe: dict, mode: str) -> bool:
        """Create each program's predictor with its chosen settings and check it against the
        probe in this process (it was verified in a worker, which a crash cannot take down)."""
        from ._predictor import Settings, compare, create_predictor, run_predictor

        self.predictors, self.onednn, self.probe_diffs = {}, {}, {}
        ok = True
        for name in ("vision", "decoder"):
            choice = self.choices.get(name) or {}
            try:
                settings = Settings.from_dict(choice["settings"])
            except (KeyError, TypeError, ValueError):
                return False
            with native_stdout_to_stderr(True, discard=not self.verbose):
                predictor = create_predictor(str(self.dir / name), settings, verbose=self.verbose)
                worst = 0.0
                for feeds, reference in probe[name]:
                    res = compare(reference, run_predictor(predictor, feeds), PROBE_RTOL)
                    ok = ok and res["ok"]
                    worst = max(worst, res.get("max_rel", float("inf")))
            self.predictors[name], self.onednn[name] = predictor, settings.onednn
            self.probe_diffs[name] = worst
            onednn_check = (choice.get("verified") or {}).get("onednn")
            if (
                ok
                and not self.recorded
                and mode == "auto"
                and onednn_check is not None
                and not onednn_check.get("ok")
            ):
                print(
                    f"ppgotocr: the oneDNN predictor of the {name} program failed or "
                    f"disagreed with the model it was exported from ({onednn_check}); using "
                    "the plain CPU kernels for it",
                    file=sys.stderr,
                )
        return ok

    def describe(self) -> str:
        """e.g. ``vision: plain CPU kernels (chosen by speed: plain 4.1 ms, onednn 9.8 ms)``."""
        from .inference_kernels import summary

        return ", ".join(
            f"{n}: {summary(self.choices[n])}, max relative difference "
            f"{self.probe_diffs[n]:.1e}" + (" (recorded)" if self.recorded else "")
            for n in ("vision", "decoder")
        )

    # -- predictors
    @staticmethod
    def _run(predictor, *arrays):
        from ._predictor import run_predictor

        return run_predictor(predictor, list(arrays))

    def _vision(self, pixels: np.ndarray) -> np.ndarray:
        predictor = self.predictors["vision"]
        return np.concatenate(
            [self._run(predictor, pixels[i : i + 1])[0] for i in range(len(pixels))]
        )

    # -- the model interface the pipeline and greedy_generate use
    def get_image_features(self, pixel_values):
        pixels = pixel_values.numpy() if hasattr(pixel_values, "numpy") else pixel_values
        with native_stdout_to_stderr(True, discard=not self.verbose):
            return self.paddle.to_tensor(self._vision(np.asarray(pixels)))

    def __call__(
        self,
        input_ids,
        image_features=None,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        logits_to_keep: int = 1,
    ):
        ids = input_ids.numpy()
        mask = attention_mask.numpy().astype(np.int64)
        with native_stdout_to_stderr(True, discard=not self.verbose):
            if past_key_values is None:
                stepper = _Stepper(
                    lambda *a: self._run(self.predictors["decoder"], *a), self.config
                )
                feats = None if image_features is None else np.asarray(image_features.numpy())
                override, omask = _splice(
                    ids, feats, self.config.image_token_id, self.config.text.hidden_size
                )
                logits = stepper.prefill(ids, mask, override, omask)
            else:
                stepper = past_key_values
                logits = stepper.decode(ids, mask, position_ids.numpy())
        return self.paddle.to_tensor(logits[:, None, :]), stepper
