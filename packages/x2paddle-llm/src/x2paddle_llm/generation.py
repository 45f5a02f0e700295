"""Batched generation with left padding: greedy and sampling, stop tokens, streaming.

Logits processing runs in numpy on the last-position logits, so the same loop drives the
dygraph model and the exported Paddle Inference predictor (:class:`StepBackend`).  The
processors follow transformers' semantics and order: repetition penalty, then temperature,
top-k, top-p; tests compare each one with transformers' own processor on the same logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class GenerationConfig:
    max_new_tokens: int = 32
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    repetition_penalty: float = 1.0  # 1.0 = off
    eos_token_id: list[int] = field(default_factory=list)
    pad_token_id: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.do_sample and self.temperature <= 0:
            raise ValueError("temperature must be > 0 when sampling")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.repetition_penalty <= 0:
            raise ValueError("repetition_penalty must be > 0")


# ------------------------------------------------------------------ processors
def apply_repetition_penalty(
    logits: np.ndarray, sequences: np.ndarray, penalty: float
) -> np.ndarray:
    """Every token already in the row (prompt included, like transformers) is penalised once."""
    if penalty == 1.0:
        return logits
    out = logits.copy()
    rows = np.arange(logits.shape[0])[:, None]
    score = np.take_along_axis(logits, sequences, axis=1)
    score = np.where(score < 0, score * penalty, score / penalty)
    out[rows, sequences] = score
    return out


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    return logits if temperature == 1.0 else logits / np.float32(temperature)


def apply_top_k(logits: np.ndarray, top_k: int) -> np.ndarray:
    if top_k <= 0 or top_k >= logits.shape[-1]:
        return logits
    kth = np.sort(logits, axis=-1)[:, -top_k][:, None]
    return np.where(logits < kth, -np.inf, logits).astype(logits.dtype)


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def apply_top_p(logits: np.ndarray, top_p: float) -> np.ndarray:
    """Keep the smallest set of tokens whose probability mass reaches ``top_p`` (at least one)."""
    if top_p >= 1.0:
        return logits
    order = np.argsort(logits, axis=-1, kind="stable")  # ascending
    sorted_logits = np.take_along_axis(logits, order, axis=-1)
    cum = np.cumsum(_softmax(sorted_logits.astype(np.float32)), axis=-1)
    remove_sorted = cum <= (1 - top_p)
    remove_sorted[:, -1] = False
    remove = np.zeros_like(remove_sorted)
    np.put_along_axis(remove, order, remove_sorted, axis=-1)
    return np.where(remove, -np.inf, logits).astype(logits.dtype)


def process_logits(logits: np.ndarray, sequences: np.ndarray, cfg: GenerationConfig) -> np.ndarray:
    logits = apply_repetition_penalty(logits.astype(np.float32), sequences, cfg.repetition_penalty)
    if cfg.do_sample:
        logits = apply_top_p(
            apply_top_k(apply_temperature(logits, cfg.temperature), cfg.top_k), cfg.top_p
        )
    return logits


def select_tokens(
    logits: np.ndarray, cfg: GenerationConfig, rng: np.random.Generator
) -> np.ndarray:
    if not cfg.do_sample:
        return np.argmax(logits, axis=-1)
    probs = _softmax(logits.astype(np.float64))
    return np.array([rng.choice(probs.shape[-1], p=row) for row in probs], dtype=np.int64)


# -------------------------------------------------------------------- backends
class StepBackend(Protocol):
    """What the loop needs from a model: last-position logits, cache kept inside."""

    def prefill(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...

    def decode(self, tokens: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...


def longrope_switch(cfg) -> int | None:
    """The cache length at which transformers recomputes the whole sequence (Phi-3 ``longrope``).

    Past ``original_max_position_embeddings`` longrope uses its long factors; transformers'
    Phi-3 then drops the cache once and re-encodes every token with them. Matching that is
    what makes long generations token-identical.
    """
    rope = cfg.rope
    if rope.get("type") == "longrope":
        return int(rope["params"]["original_max_position_embeddings"])
    return None


class DygraphBackend:
    """Drives :class:`~x2paddle_llm.modeling_decoder.DecoderForCausalLM` with its KV cache."""

    def __init__(self, model):
        from ._paddle import require_paddle

        self.paddle = require_paddle()
        self.model = model
        self.cache = None
        self.ids = None
        self.switch = longrope_switch(model.config)

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        paddle = self.paddle
        with paddle.no_grad():
            logits, self.cache = self.model(
                paddle.to_tensor(ids, dtype="int64"),
                attention_mask=paddle.to_tensor(mask, dtype="int64"),
                past_key_values=self.cache,
                last_only=True,
            )
        return logits[:, -1, :].astype("float32").numpy()

    def prefill(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.cache = None
        self.ids = input_ids
        return self._run(input_ids, attention_mask)

    def decode(self, tokens: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        past = self.ids.shape[1]
        self.ids = np.concatenate([self.ids, tokens], axis=1)
        if self.switch is not None and past == self.switch:
            self.cache = None
            return self._run(self.ids, attention_mask)
        return self._run(tokens, attention_mask)


def left_pad(prompts: Sequence[Sequence[int]], pad_token_id: int) -> tuple[np.ndarray, np.ndarray]:
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    width = max(len(p) for p in prompts)
    ids = np.full((len(prompts), width), pad_token_id, dtype=np.int64)
    mask = np.zeros((len(prompts), width), dtype=np.int64)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = p
        mask[i, width - len(p) :] = 1
    return ids, mask


def generate_with_backend(
    backend: StepBackend,
    prompts: Sequence[Sequence[int]],
    cfg: GenerationConfig,
    on_step: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> list[list[int]]:
    """Generate for every prompt; returns the new tokens of each row (stop token included).

    ``on_step(tokens, finished)`` is called after every step (streaming output).
    """
    rng = np.random.default_rng(cfg.seed)
    ids, mask = left_pad(prompts, cfg.pad_token_id)
    sequences = ids
    eos = np.array(cfg.eos_token_id or [-1], dtype=np.int64)
    finished = np.zeros(len(prompts), dtype=bool)
    new_tokens: list[list[int]] = [[] for _ in prompts]
    logits = backend.prefill(ids, mask)
    for step in range(cfg.max_new_tokens):
        chosen = select_tokens(process_logits(logits, sequences, cfg), cfg, rng)
        chosen = np.where(finished, cfg.pad_token_id, chosen).astype(np.int64)
        for i, tok in enumerate(chosen):
            if not finished[i]:
                new_tokens[i].append(int(tok))
        sequences = np.concatenate([sequences, chosen[:, None]], axis=1)
        finished = finished | np.isin(chosen, eos)
        if on_step is not None:
            on_step(chosen, finished)
        if finished.all() or step == cfg.max_new_tokens - 1:
            break
        mask = np.concatenate([mask, np.ones((len(prompts), 1), dtype=np.int64)], axis=1)
        logits = backend.decode(chosen[:, None], mask)
    return new_tokens


def generate(
    model,
    prompts: Sequence[Sequence[int]],
    cfg: GenerationConfig | None = None,
    on_step: Callable[[np.ndarray, np.ndarray], None] | None = None,
    **kwargs,
) -> list[list[int]]:
    """Generate with the dygraph model; ``kwargs`` are :class:`GenerationConfig` fields."""
    if cfg is None:
        mc = model.config
        kwargs.setdefault("eos_token_id", list(mc.eos_token_id))
        kwargs.setdefault(
            "pad_token_id",
            mc.pad_token_id
            if mc.pad_token_id is not None
            else (mc.eos_token_id[0] if mc.eos_token_id else 0),
        )
        cfg = GenerationConfig(**kwargs)
    return generate_with_backend(DygraphBackend(model), prompts, cfg, on_step)
