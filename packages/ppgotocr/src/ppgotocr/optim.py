"""AdamW, learning-rate schedules and gradient clipping with torch / transformers' formulas,
state keyed by parameter names (so a checkpoint resumes exactly)."""

from __future__ import annotations

import math

from .training_args import TrainArgs


def lr_lambda(step: int, warmup: int, total: int, kind: str) -> float:
    """transformers' get_{cosine,linear,constant}_schedule_with_warmup."""
    if step < warmup:
        return step / max(1, warmup)
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if kind == "linear":
        return max(0.0, 1.0 - progress)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


class AdamW:
    """torch.optim.AdamW's update (decoupled decay, bias corrections), state keyed by name."""

    def __init__(self, params: dict, args: TrainArgs, no_decay: set):
        import paddle

        self.params, self.args, self.no_decay = params, args, no_decay
        self.t = 0
        self.m = {n: paddle.zeros_like(p) for n, p in params.items()}
        self.v = {n: paddle.zeros_like(p) for n, p in params.items()}

    def step(self, lr: float) -> None:
        import paddle

        a = self.args
        self.t += 1
        bc1 = 1 - a.adam_beta1**self.t
        bc2_sqrt = math.sqrt(1 - a.adam_beta2**self.t)
        with paddle.no_grad():
            for n, p in self.params.items():
                g = p.grad
                if g is None:
                    continue
                if a.weight_decay and n not in self.no_decay:
                    p.set_value(p * (1 - lr * a.weight_decay))
                self.m[n] = self.m[n] * a.adam_beta1 + g * (1 - a.adam_beta1)
                self.v[n] = self.v[n] * a.adam_beta2 + g * g * (1 - a.adam_beta2)
                denom = self.v[n].sqrt() / bc2_sqrt + a.adam_eps
                p.set_value(p - (lr / bc1) * (self.m[n] / denom))

    def state_arrays(self) -> dict:
        out = {f"m.{n}": t.numpy() for n, t in self.m.items()}
        out.update({f"v.{n}": t.numpy() for n, t in self.v.items()})
        return out

    def load_arrays(self, arrays: dict, t: int) -> None:
        import paddle

        self.t = t
        for n in self.params:
            self.m[n] = paddle.to_tensor(arrays[f"m.{n}"])
            self.v[n] = paddle.to_tensor(arrays[f"v.{n}"])


def clip_grad_norm(params: dict, max_norm: float) -> float:
    """torch.nn.utils.clip_grad_norm_ (coef = max / (norm + 1e-6), clamped at 1)."""
    import paddle

    grads = [p.grad for p in params.values() if p.grad is not None]
    if not grads:
        return 0.0
    total = paddle.sqrt(paddle.add_n([paddle.sum(g.astype("float32") ** 2) for g in grads]))
    total_f = float(total)
    if max_norm and max_norm > 0:
        coef = min(1.0, max_norm / (total_f + 1e-6))
        if coef < 1.0:
            for p in params.values():
                if p.grad is not None:
                    p.grad.set_value(p.grad * coef)
    return total_f
