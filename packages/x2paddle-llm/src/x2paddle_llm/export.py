"""Export to a Paddle Inference (PIR) model and generate through ``paddle.inference``.

One program serves prefill and decode over a **preallocated cache**: inputs ``input_ids
[B, S]``, ``attention_mask [B, C]`` (over the cache's ``C`` slots: 1 = a real token at or
before this step, 0 = padding or a free slot), ``cache_position`` (a scalar: the slot of the
step's first token) and ``past_key`` / ``past_value [L, B, heads, C, head_dim]``; outputs the
last position's logits ``[B, vocab]`` and the caches with the step's keys and values written at
``cache_position``.  Batch, sequence and capacity are dynamic in the program, but during one
generation every decode step has the same shapes, so oneDNN builds its primitives once instead
of at every step as a cache grown by concatenation made it do.

Paddle 3.3.1's CPU predictor with oneDNN can return silently wrong numbers for exactly this
kind of graph (a traced Llama was measured off by 1.8).  The export therefore stores a probe (inputs + dygraph
outputs); :class:`InferenceRunner` runs it when it starts, and in ``auto`` mode falls back
from oneDNN to the plain CPU kernels when the probe disagrees.  If neither agrees it raises.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np

from ._atomic import atomic_dir, prepare_output
from ._paddle import native_stdout_to_stderr, require_paddle
from .generation import GenerationConfig, generate_with_backend, left_pad, longrope_switch

MODEL_PREFIX = "model"
PROBE_NAME = "probe.npz"
META_NAME = "x2paddle_llm_inference.json"
COPIED_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
)
PROBE_ATOL = 1e-3  # fp32; the exact path agrees to ~1e-6, the oneDNN defect is off by ~1


CACHE_FORMAT = "static"  # 0.2.0 exports (cache grown by concatenation) have no "cache" key
CAPACITY_STEP = 32  # capacities are rounded up to this, so similar requests share shapes


def _wrapper_class():
    paddle = require_paddle()
    from .blocks import CacheSlot

    class CachedStep(paddle.nn.Layer):
        def __init__(self, model):
            super().__init__()
            self.model = model
            self.num_layers = model.config.num_hidden_layers

        def forward(self, input_ids, attention_mask, cache_position, past_key, past_value):
            query_len = paddle.shape(input_ids)[1]
            pos = paddle.clip(paddle.cumsum(attention_mask, axis=-1) - 1, min=0)
            position_ids = paddle.slice(
                pos, axes=[1], starts=[cache_position], ends=[cache_position + query_len]
            )
            first = paddle.reshape(cache_position, [1])
            bounds = (first, first + query_len)
            slots = [
                CacheSlot(past_key[i], past_value[i], cache_position, bounds)
                for i in range(self.num_layers)
            ]
            hidden, presents = self.model.decode_layers(
                input_ids, attention_mask, position_ids, slots, start=cache_position
            )
            logits = self.model.logits(hidden[:, -1, :])
            if logits.dtype != paddle.float32:
                logits = logits.astype("float32")
            keys = paddle.stack([k for k, _ in presents], axis=0)
            values = paddle.stack([v for _, v in presents], axis=0)
            return logits, keys, values

    return CachedStep


def cache_shapes(cfg) -> tuple[list, list]:
    """``[L, B, heads, C, D]`` of the stacked key and value caches (``None`` = dynamic)."""
    heads = cfg.num_attention_heads if cfg.mla else cfg.num_key_value_heads
    k_dim, v_dim = cfg.cache_head_dims
    return (
        [cfg.num_hidden_layers, None, heads, None, k_dim],
        [cfg.num_hidden_layers, None, heads, None, v_dim],
    )


def _empty_cache(cfg, batch: int, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    k, v = cache_shapes(cfg)
    return tuple(
        np.zeros(
            [d if d is not None else (batch if i == 1 else capacity) for i, d in enumerate(s)],
            np.float32,
        )
        for s in (k, v)
    )


def _probe_inputs(cfg, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """A left-padded batch of two prompts, then two decode steps."""
    rng = np.random.default_rng(seed)
    prompts = [
        rng.integers(0, cfg.vocab_size, 5).tolist(),
        rng.integers(0, cfg.vocab_size, 9).tolist(),
    ]
    ids, mask = left_pad(prompts, 0)
    return [{"input_ids": ids, "attention_mask": mask}] + [
        {"input_ids": rng.integers(0, cfg.vocab_size, (2, 1)).astype(np.int64)} for _ in range(2)
    ]


class _StepRunner:
    """Feeds prefill/decode steps to a callable, carrying the preallocated cache.

    ``reserve`` is how many tokens will follow the prompt (``max_new_tokens``): the cache is
    allocated once per prompt with room for them (rounded up to :data:`CAPACITY_STEP`), and only
    grows (a copy) if a caller decodes past it.
    """

    def __init__(self, step, cfg, reserve: int = 0):
        self.step, self.cfg, self.reserve = step, cfg, reserve
        self.keys = self.values = None
        self.ids = self.mask = None
        self.switch = longrope_switch(cfg)

    def _allocate(self, batch: int, needed: int) -> None:
        capacity = -(-needed // CAPACITY_STEP) * CAPACITY_STEP
        self.keys, self.values = _empty_cache(self.cfg, batch, capacity)
        self.mask = np.zeros((batch, capacity), np.int64)

    def _grow(self) -> None:
        old = self.mask.shape[1]
        keys, values = self.keys, self.values
        if not isinstance(keys, np.ndarray):
            keys, values = keys.numpy(), values.numpy()
        self._allocate(self.mask.shape[0], old + 1)
        self.keys[:, :, :, :old], self.values[:, :, :, :old] = keys, values

    def _call(self, tokens: np.ndarray, start: int) -> np.ndarray:
        logits, self.keys, self.values = self.step(
            tokens.astype(np.int64), self.mask, np.array(start, np.int64), self.keys, self.values
        )
        return logits

    def prefill(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        batch, length = input_ids.shape
        self.ids = input_ids
        self._allocate(batch, length + max(self.reserve, 1))
        self.mask[:, :length] = attention_mask
        return self._call(input_ids, 0)

    def decode(self, tokens: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        past = self.ids.shape[1]
        if self.switch is not None and past == self.switch:  # see generation.longrope_switch
            return self.prefill(np.concatenate([self.ids, tokens], axis=1), attention_mask)
        self.ids = np.concatenate([self.ids, tokens], axis=1)
        if past + 1 > self.mask.shape[1]:
            self._grow()
        self.mask[:, : past + 1] = attention_mask
        return self._call(tokens, past)

    def run_probe(self, steps: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        self.reserve = len(steps) - 1
        outs = [self.prefill(steps[0]["input_ids"], steps[0]["attention_mask"])]
        mask = steps[0]["attention_mask"]
        for s in steps[1:]:
            mask = np.concatenate([mask, np.ones((mask.shape[0], 1), np.int64)], axis=1)
            outs.append(self.decode(s["input_ids"], mask))
        return outs


def export_inference(model_dir: str | Path, infer_dir: str | Path, overwrite: bool = False) -> dict:
    """Export the converted model in ``model_dir`` (fp32) to a Paddle Inference folder."""
    paddle = require_paddle()
    from . import kernels
    from .modeling_decoder import DecoderForCausalLM

    model_dir, infer_dir = Path(model_dir), Path(infer_dir)
    prepare_output(infer_dir, overwrite=overwrite)
    model = DecoderForCausalLM.from_pretrained(model_dir, dtype="float32")
    cfg = model.config
    wrapper = _wrapper_class()(model)
    wrapper.eval()

    cases = []  # every step's full feeds and outputs: each step can be checked on its own

    def eager_step(*arrays):
        with paddle.no_grad():
            out = [o.numpy() for o in wrapper(*(paddle.to_tensor(a) for a in arrays))]
        cases.append(([np.array(a, copy=True) for a in arrays], out))  # the mask is reused
        return out

    _StepRunner(eager_step, cfg).run_probe(_probe_inputs(cfg))

    k_shape, v_shape = cache_shapes(cfg)
    spec = [
        paddle.static.InputSpec([None, None], "int64", "input_ids"),
        paddle.static.InputSpec([None, None], "int64", "attention_mask"),
        paddle.static.InputSpec([], "int64", "cache_position"),
        paddle.static.InputSpec(k_shape, "float32", "past_key"),
        paddle.static.InputSpec(v_shape, "float32", "past_value"),
    ]
    with atomic_dir(infer_dir, overwrite=overwrite) as tmp:
        static = paddle.jit.to_static(wrapper, input_spec=spec, full_graph=True)
        with native_stdout_to_stderr(), warnings.catch_warnings():
            # Paddle's own tracing notice, not about the user's model; `--verbose` keeps warnings on.
            warnings.filterwarnings("ignore", message="Tensor do not have 'place'")
            paddle.jit.save(static, str(tmp / MODEL_PREFIX))
        arrays = {}
        for i, (feeds, outs) in enumerate(cases):
            for spec_i, feed in zip(spec, feeds):
                arrays[f"step{i}_{spec_i.name}"] = feed
            for j, out in enumerate(outs):
                arrays[f"step{i}_out{j}"] = out
        np.savez(tmp / PROBE_NAME, **arrays)
        cfg.save(tmp, name="x2paddle_llm_config.json")
        for name in COPIED_FILES:
            if (model_dir / name).is_file():
                shutil.copyfile(model_dir / name, tmp / name)
        model_file = next(
            (
                p.name
                for p in tmp.iterdir()
                if p.name.startswith(MODEL_PREFIX + ".") and p.suffix in (".json", ".pdmodel")
            ),
            None,
        )
        meta = {
            "model_file": model_file,
            "params_file": MODEL_PREFIX + ".pdiparams",
            "inputs": [s.name for s in spec],
            "outputs": ["logits", "present_key", "present_value"],
            "cache": CACHE_FORMAT,
            "probe_steps": len(cases),
            "probe_atol": PROBE_ATOL,
            "paddle_version": paddle.__version__,
            # compiled operators the program calls (loaded before a predictor is made)
            "kernels": list(kernels.OP_NAMES)
            if any(getattr(m, "stacked_in", None) is not None for m in model.sublayers())
            else [],
        }
        (tmp / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _load_kernels(infer_dir: Path, meta: dict) -> None:
    """Load the compiled operators an export calls (and make its predictor workers load
    them) or say clearly why they cannot be."""
    used = meta.get("kernels", [])
    if used:
        from . import kernels

        try:
            kernels.load(required=True)
        except kernels.KernelUnavailable as exc:
            raise kernels.KernelUnavailable(
                f"exported with x2paddle-llm's compiled operators {used}, which cannot be "
                f"loaded here ({exc.problem}); export the model again with "
                f"{kernels.ENV_SWITCH}=0 for a program of Paddle's own operators only",
                infer_dir,
            ) from None


class InferenceRunner:
    """Generate through ``paddle.inference`` from an exported folder, verified at start-up.

    Every step of the exported probe (a left-padded prefill and two decode steps, with the
    dygraph model's feeds and outputs) is a self-contained check case.  ``mode``:

    * ``"auto"``: the plain CPU kernels and oneDNN are each checked on the probe in a worker
      process (a oneDNN defect may crash or hang a process); if oneDNN is wrong, the fusion
      passes at fault are searched and deleted; the verified configurations are then timed on
      the probe and the fastest is used (oneDNN only when more than 5 % faster);
    * ``"onednn"``: oneDNN (repaired if needed) or an error;
    * ``"plain"``: oneDNN off, checked in this process.

    Whatever is chosen is checked once more in this process before use: never silently wrong.
    ``choice`` holds the evidence (each candidate's check, the timings, the load).
    """

    def __init__(self, infer_dir: str | Path, mode: str = "auto", threads: int = 1):
        from ._predictor import Settings, choose_fastest
        from .config import DecoderConfig

        if mode not in ("auto", "onednn", "plain"):
            raise ValueError("mode must be auto, onednn or plain")
        self.paddle = require_paddle()
        self.dir = Path(infer_dir)
        meta_path = self.dir / META_NAME
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{meta_path}: missing; export with `x2paddle-llm export` first"
            )
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("cache") != CACHE_FORMAT:
            raise ValueError(
                f"{meta_path}: exported by an older x2paddle-llm (cache grown by concatenation); "
                "export the converted folder again with `x2paddle-llm export`"
            )
        self.config = DecoderConfig.load(self.dir)
        _load_kernels(self.dir, self.meta)
        self.threads = threads
        self.graph = (self.dir / self.meta["model_file"], self.dir / self.meta["params_file"])
        self.cases = self._load_cases()
        tolerance = {"atol": self.meta["probe_atol"], "rtol": 0.0}
        plain, onednn = Settings(False, [], threads), Settings(True, [], threads)
        self.choice = None
        if mode == "plain":
            settings = plain
        else:
            self.choice = choose_fastest(
                self.graph,
                self.cases,
                candidates=[plain, onednn] if mode == "auto" else [onednn],
                threads=threads,
                margin=0.05,
                **tolerance,
            )
            if not self.choice["ok"]:
                raise RuntimeError(
                    f"{self.dir}: no predictor configuration reproduces the exported probe: "
                    f"{self.choice['verified']}"
                )
            settings = Settings.from_dict(self.choice["settings"])
            first = self.choice["verified"].get("onednn", {})
            if mode == "auto" and not first.get("ok") and not settings.onednn:
                warnings.warn(
                    f"{self.dir}: oneDNN predictor disagreed with the dygraph model ({first}); "
                    "using the plain CPU kernels",
                    RuntimeWarning,
                    stacklevel=2,
                )
        self.attempts = [
            {"settings": label, **result}
            for label, result in (self.choice["verified"] if self.choice else {}).items()
        ]
        self.predictor = self._create(settings)
        self._handles, self._bound, self._spare = {}, {}, None
        self.probe_diff = self._check(self.predictor)
        self.attempts.append({"settings": settings.label, "in_process_max_abs": self.probe_diff})
        if self.probe_diff > self.meta["probe_atol"]:
            raise RuntimeError(
                f"{self.dir}: no predictor configuration reproduces the exported probe: "
                f"{self.attempts}"
            )
        self.settings, self.onednn = settings, settings.onednn

    def _load_cases(self) -> list[tuple[dict, list]]:
        names = self.meta["inputs"]
        with np.load(self.dir / PROBE_NAME) as probe:
            return [
                (
                    {name: probe[f"step{i}_{name}"] for name in names},
                    [probe[f"step{i}_out{j}"] for j in range(len(self.meta["outputs"]))],
                )
                for i in range(self.meta["probe_steps"])
            ]

    def _create(self, settings):
        from ._predictor import create_predictor

        with native_stdout_to_stderr():
            return create_predictor(self.graph, settings)

    def _run(self, predictor, ids, mask, start, keys, values):
        """One step through the zero-copy handles. The cache stays Paddle tensors between steps:
        the inputs are shared with the predictor (``share_external_data``, no copy) and the
        predictor writes the new caches into a second pair of tensors allocated once per cache
        (the outputs are shared too), which the next step reads while the predictor writes into
        the first pair. Only the ids, the mask and the logits cross to and from numpy."""
        paddle = self.paddle
        if isinstance(keys, np.ndarray):  # a new (or grown) cache: its output pair once
            keys, values = paddle.to_tensor(keys), paddle.to_tensor(values)
            self._spare = None
        # the spare pair is the previous step's input, which its generation no longer reads;
        # a new one when the shapes differ (another generation interleaved with this one) or
        # when it is this step's input (never written while read)
        spare = self._spare
        if spare is None or spare[0] is keys or spare[0].shape != keys.shape:
            self._spare = (paddle.empty_like(keys), paddle.empty_like(values))
        out_keys, out_values = self._spare
        handles = self._handles.get(id(predictor))
        if handles is None:
            handles = self._handles[id(predictor)] = (
                [predictor.get_input_handle(n) for n in self.meta["inputs"]],
                [predictor.get_output_handle(n) for n in predictor.get_output_names()],
            )
        (h_ids, h_mask, h_start, h_keys, h_values), (h_logits, h_out_k, h_out_v) = handles
        for handle, value in ((h_ids, ids), (h_mask, mask), (h_start, start)):
            value = np.ascontiguousarray(value)
            handle.reshape(list(value.shape))
            handle.copy_from_cpu(value)
        h_keys.share_external_data(keys)
        h_values.share_external_data(values)
        h_out_k.share_external_data(out_keys)
        h_out_v.share_external_data(out_values)
        # the handles do not own what they share: keep all four alive for as long as they
        # stay bound (a later run writes its outputs into the bound tensors)
        self._bound[id(predictor)] = (keys, values, out_keys, out_values)
        with native_stdout_to_stderr():  # oneDNN passes print to stdout from C++
            predictor.run()
        self._spare = (keys, values)
        return [h_logits.copy_to_cpu(), out_keys, out_values]

    def _check(self, predictor) -> float:
        """Max |difference| from the probe over every step's outputs, run in this process
        through the same zero-copy path as generation."""
        diff = 0.0
        for feeds, reference in self.cases:
            outs = self._run(
                predictor, *(np.array(feeds[n], copy=True) for n in self.meta["inputs"])
            )
            for ref, out in zip(reference, outs):
                out = out if isinstance(out, np.ndarray) else out.numpy()
                if out.shape != ref.shape or not np.all(np.isfinite(out)):
                    return float("inf")
                diff = max(diff, float(np.abs(out - ref).max()))
        return diff

    def backend(self, reserve: int = 0) -> _StepRunner:
        """A step backend for :func:`~x2paddle_llm.generation.generate_with_backend` whose cache
        has room for ``reserve`` tokens after the prompt."""
        return _StepRunner(lambda *a: self._run(self.predictor, *a), self.config, reserve)

    def generate(
        self, prompts, cfg: GenerationConfig | None = None, on_step=None, **kwargs
    ) -> list[list[int]]:
        if cfg is None:
            mc = self.config
            kwargs.setdefault("eos_token_id", list(mc.eos_token_id))
            kwargs.setdefault(
                "pad_token_id",
                mc.pad_token_id
                if mc.pad_token_id is not None
                else (mc.eos_token_id[0] if mc.eos_token_id else 0),
            )
            cfg = GenerationConfig(**kwargs)
        return generate_with_backend(self.backend(cfg.max_new_tokens), prompts, cfg, on_step)
