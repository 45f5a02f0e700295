"""Cache accelerators for the FLUX transformer, as diffusers exposes them.

* First Block Cache (``FirstBlockCacheConfig``, ``apply_first_block_cache``): every step runs
  the first block; when its residual changed by less than ``threshold`` (mean absolute change
  relative to the residual of the last fully computed step), the other blocks are skipped and
  the residual they added last time is reused.
* TaylorSeer (``TaylorSeerCacheConfig``): every attention layer is computed at a fixed step
  interval (after a warm-up) and predicted in between by a Taylor expansion in the step index
  from finite differences of its last computed outputs. ``use_lite_mode`` predicts only the
  final projection and skips the blocks.

Both keep one state per *context* (``transformer.cache_context("cond")``; true CFG uses
"uncond" for the negative prompt), reset by ``transformer.reset_cache()`` at the end of every
pipeline call. Enable with ``transformer.enable_cache(config)``; ``disable_cache()`` removes it.
The decisions and formulas are diffusers' (checked against diffusers' own cached outputs in
``tests/newest``); unlike diffusers, every ppflux pipeline uses them, not only FluxPipeline.
"""

from __future__ import annotations

import math
import re
from contextlib import contextmanager
from dataclasses import dataclass

from ._compat import require_paddle

paddle = require_paddle()


@dataclass
class FirstBlockCacheConfig:
    """``threshold``: relative change of the first block's residual below which the remaining
    blocks are skipped (higher: faster, further from the uncached image)."""

    threshold: float = 0.05


@dataclass
class TaylorSeerCacheConfig:
    """TaylorSeer: compute at steps ``< disable_cache_before_step`` and every
    ``cache_interval`` steps after it (and from ``disable_cache_after_step`` on), predict the
    others with a Taylor expansion of order ``max_order``, factors stored in
    ``taylor_factors_dtype`` (None: the output's dtype). ``cache_identifiers`` /
    ``skip_predict_identifiers`` are regular expressions over sub-layer names (default: the
    attention layers of every block)."""

    cache_interval: int = 5
    disable_cache_before_step: int = 3
    disable_cache_after_step: int | None = None
    max_order: int = 1
    taylor_factors_dtype: str | None = "bfloat16"
    skip_predict_identifiers: list[str] | None = None
    cache_identifiers: list[str] | None = None
    use_lite_mode: bool = False


_ATTENTION = ("^transformer_blocks.*attn", "^single_transformer_blocks.*attn")
_BLOCKS = (r"^[^.]*block[^.]*\.[^.]+$",)
_PROJ_OUT = ("^proj_out$",)


class _Contexts:
    """One state object per cache context."""

    def __init__(self, factory):
        self.factory, self.states, self.current = factory, {}, None

    def get(self):
        name = self.current or "cond"
        if name not in self.states:
            self.states[name] = self.factory()
        return self.states[name]

    def reset(self):
        self.states, self.current = {}, None


class _FirstBlockState:
    def __init__(self):
        self.head_output = None  # (hidden, encoder) after the first block, last full step
        self.head_residual = None
        self.tail_residuals = None
        self.should_compute = True


class FirstBlockCache:
    """Runs the transformer's blocks (double then single, in order) with First Block Cache."""

    def __init__(self, config: FirstBlockCacheConfig):
        self.config = config
        self.contexts = _Contexts(_FirstBlockState)
        self.skipped = 0  # steps whose remaining blocks were skipped (for reports)

    def run(self, position: int, total: int, call, hidden_states, encoder_hidden_states):
        """``call()`` runs the block and returns ``(encoder, hidden)``, as Flux blocks do."""
        state = self.contexts.get()
        if position == 0:
            encoder, hidden = call()
            residual = hidden - hidden_states
            state.should_compute = self._changed(state, residual)
            if not state.should_compute:
                self.skipped += 1
                return (state.tail_residuals[1] + encoder, state.tail_residuals[0] + hidden)
            state.head_output = (hidden, encoder)
            state.head_residual = residual
            return encoder, hidden
        if not state.should_compute:
            return encoder_hidden_states, hidden_states
        encoder, hidden = call()
        if position == total - 1:
            state.tail_residuals = (hidden - state.head_output[0], encoder - state.head_output[1])
        return encoder, hidden

    def _changed(self, state, residual) -> bool:
        if state.head_residual is None:
            return True
        previous = state.head_residual
        absmean = (residual - previous).abs().mean()
        return float(absmean / previous.abs().mean()) > self.config.threshold


class _TaylorState:
    def __init__(self, factors_dtype, max_order, inactive):
        self.factors_dtype, self.max_order, self.inactive = factors_dtype, max_order, inactive
        self.dtypes, self.shapes = (), None
        self.last_update = None
        self.factors: dict[int, dict[int, paddle.Tensor]] = {}
        self.step = -1

    def update(self, outputs):
        self.dtypes = tuple(o.dtype for o in outputs)
        if self.inactive:
            self.shapes = tuple(list(o.shape) for o in outputs)
        else:
            for i, features in enumerate(outputs):
                new = {0: features}
                if self.last_update is not None:
                    delta = self.step - self.last_update
                    previous = self.factors.get(i, {})
                    for j in range(self.max_order):
                        if previous.get(j) is None:
                            break
                        new[j + 1] = (new[j] - previous[j].astype(features.dtype)) / delta
                dtype = self.factors_dtype
                self.factors[i] = {k: (v.astype(dtype) if dtype else v) for k, v in new.items()}
        self.last_update = self.step

    def predict(self):
        offset = self.step - self.last_update
        if self.inactive:
            return [paddle.zeros(s, dtype=d) for s, d in zip(self.shapes, self.dtypes)]
        outputs = []
        for i in range(len(self.factors)):
            factors = self.factors[i]
            out = paddle.zeros_like(factors[0], dtype=self.dtypes[i])
            for order in range(len(factors)):
                coeff = (offset**order) / math.factorial(order)
                out = out + factors[order].astype(self.dtypes[i]) * coeff
            outputs.append(out)
        return outputs


class _TaylorSeerLayer:
    """Replaces one sub-layer's ``forward``: compute on schedule, else predict."""

    def __init__(self, layer, config: TaylorSeerCacheConfig, inactive: bool):
        self.layer, self.config, self.original = layer, config, layer.forward
        self.contexts = _Contexts(
            lambda: _TaylorState(config.taylor_factors_dtype, config.max_order, inactive)
        )
        layer.forward = self

    def __call__(self, *args, **kwargs):
        state = self.contexts.get()
        state.step += 1
        c = self.config
        compute = (
            state.step < c.disable_cache_before_step
            or (state.step - c.disable_cache_before_step - 1) % c.cache_interval == 0
            or (c.disable_cache_after_step is not None and state.step >= c.disable_cache_after_step)
        )
        if compute:
            outputs = self.original(*args, **kwargs)
            state.update((outputs,) if isinstance(outputs, paddle.Tensor) else outputs)
            return outputs
        outputs = state.predict()
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def remove(self):
        del self.layer.forward  # back to the class's forward


def apply_first_block_cache(transformer, config: FirstBlockCacheConfig) -> None:
    """Enable First Block Cache on a ``FluxTransformer2DModel`` (diffusers' function name)."""
    transformer.enable_cache(config)


class CacheMixin:
    """``enable_cache`` / ``disable_cache`` / ``cache_context`` / ``reset_cache`` for the
    transformer (diffusers' ``CacheMixin`` names)."""

    _first_block_cache = None
    _taylorseer_layers = ()
    _cache_config = None

    @property
    def is_cache_enabled(self) -> bool:
        return self._cache_config is not None

    def enable_cache(self, config) -> None:
        if self._cache_config is not None:
            raise ValueError(
                f"caching is already enabled with {type(self._cache_config).__name__}"
                "; call disable_cache() first"
            )
        if isinstance(config, FirstBlockCacheConfig):
            self._first_block_cache = FirstBlockCache(config)
        elif isinstance(config, TaylorSeerCacheConfig):
            active = list(config.cache_identifiers or _ATTENTION)
            inactive = list(config.skip_predict_identifiers or [])
            if config.use_lite_mode:
                active, inactive = list(_PROJ_OUT), list(_BLOCKS)
            layers = []
            for name, layer in self.named_sublayers():
                is_inactive = any(re.fullmatch(p, name) for p in inactive)
                if is_inactive or any(re.fullmatch(p, name) for p in active):
                    layers.append(_TaylorSeerLayer(layer, config, is_inactive))
            if not layers:
                raise ValueError("TaylorSeer: no sub-layer matches the identifiers")
            self._taylorseer_layers = layers
        else:
            raise ValueError(
                f"unsupported cache config {type(config).__name__} (ppflux has "
                "FirstBlockCacheConfig and TaylorSeerCacheConfig)"
            )
        self._cache_config = config

    def disable_cache(self) -> None:
        for layer in self._taylorseer_layers:
            layer.remove()
        self._taylorseer_layers = ()
        self._first_block_cache = None
        self._cache_config = None

    def _cache_contexts(self):
        found = [layer.contexts for layer in self._taylorseer_layers]
        if self._first_block_cache is not None:
            found.append(self._first_block_cache.contexts)
        return found

    @contextmanager
    def cache_context(self, name: str):
        """States of the caches are kept per context (e.g. "cond" / "uncond" for true CFG)."""
        contexts = self._cache_contexts()
        previous = [c.current for c in contexts]
        for c in contexts:
            c.current = name
        try:
            yield
        finally:
            for c, p in zip(contexts, previous):
                c.current = p

    def reset_cache(self) -> None:
        """Forget every cached state (each pipeline call ends with this)."""
        for c in self._cache_contexts():
            c.reset()
