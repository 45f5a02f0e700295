"""The training optimiser: torch's ``clip_grad_norm_`` and ``torch.optim.AdamW`` in Paddle, with
torch's rounding, as one multi-tensor update per parameter group.

A LoRA run trains many small tensors (60 on the 2 + 2 block test model, 1100+ on FLUX.1-dev):
updated one by one, the ~20 elementwise ops of an AdamW step run per tensor and the step costs
more in dispatch than in arithmetic. Here each group's parameters, gradients and moments are
laid end to end in one flat vector and every op runs once per group. The ops are elementwise,
so every element goes through the same operations in the same order as the per-tensor update
(bit-identical results); only the gradient norms of clipping are reductions, and those are
still taken tensor by tensor, as torch does.
"""

from __future__ import annotations

import math

import numpy as np


def _numel(p) -> int:
    return int(np.prod(p.shape)) if len(p.shape) else 1


def _flat(paddle, tensors):
    """The tensors end to end, as one 1-D tensor (a copy)."""
    from paddle import _C_ops

    # _C_ops.reshape: the same kernel without Tensor.reshape's Python checks (1.8 against
    # 3.4 us a call, and a LoRA step flattens two tensors per trained tensor)
    return paddle.concat([_C_ops.reshape(t, [-1]) for t in tensors])


def clip_grad_norm(paddle, params, max_norm: float) -> float:
    """torch.nn.utils.clip_grad_norm_: the norm of the per-tensor 2-norms; gradients are scaled
    by ``max_norm / (norm + 1e-6)`` when that is below 1. torch multiplies by the clamped
    coefficient even when it is 1; skipping that multiplication gives the same values."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    from paddle import _C_ops

    with paddle.no_grad():
        # the square root of Paddle's squared_l2_norm kernel (the one its global-norm clipping
        # uses): Paddle's p_norm kernel takes ~40x longer on a LoRA gradient of FLUX.1's width
        # (0.4 ms on 49152 elements) and lands further from torch's vector_norm (2e-5 relative
        # vs 2e-6 measured on such gradients)
        norms = paddle.sqrt(paddle.stack([_C_ops.squared_l2_norm(g) for g in grads]))
        total = paddle.sqrt(_C_ops.squared_l2_norm(norms)).reshape([])
        coef = paddle.clip(float(max_norm) / (total + 1e-6), max=1.0)
        if float(coef) < 1.0:
            for p in params:
                if p.grad is not None:
                    p.grad.set_value(p.grad * coef)
    return float(total)


class TorchAdamW:
    """AdamW with torch.optim.AdamW's exact update order (decoupled decay first, bias
    corrections as torch computes them); Paddle's AdamW is algebraically equal but rounds
    differently, which shows up on the smallest LoRA gradients.

    ``groups``: ``[(params, lr multiplier, weight decay)]``. The moments of a group are one
    flat vector each (parameters in the group's order); ``state_dict`` splits them per
    parameter (``m_<group>_<index>``, the parameter's shape). A parameter without a gradient
    is left alone, decay included, as torch does."""

    def __init__(self, paddle, groups, lr, betas, eps):
        self.paddle = paddle
        self.groups = groups
        self.lr = float(lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.step_count = 0
        self.sizes = [[_numel(p) for p in ps] for ps, _, _ in groups]
        self.exp_avg = [
            paddle.zeros([sum(sizes)], dtype=ps[0].dtype)
            for (ps, _, _), sizes in zip(groups, self.sizes)
        ]
        self.exp_avg_sq = [paddle.zeros_like(m) for m in self.exp_avg]

    def get_lr(self):
        return self.lr

    def set_lr(self, lr):
        self.lr = float(lr)

    def clear_grad(self):
        """Releases the gradients (the next backward writes them afresh: the same values as
        zeroing and adding, without two ops per tensor)."""
        for ps, _, _ in self.groups:
            for p in ps:
                p.clear_gradient(False)

    def step(self):
        paddle = self.paddle
        self.step_count += 1
        t = self.step_count
        bc1 = 1 - self.beta1**t
        bc2_sqrt = math.sqrt(1 - self.beta2**t)
        from paddle import _C_ops

        with paddle.no_grad():
            for gi, (ps, mult, wd) in enumerate(self.groups):
                lr = self.lr * mult
                live = [i for i, p in enumerate(ps) if p.grad is not None]
                if not live:
                    continue
                everything = len(live) == len(ps)
                sizes = self.sizes[gi]
                if everything:
                    m, v = self.exp_avg[gi], self.exp_avg_sq[gi]
                else:
                    m_parts = paddle.split(self.exp_avg[gi], sizes)
                    v_parts = paddle.split(self.exp_avg_sq[gi], sizes)
                    m = paddle.concat([m_parts[i] for i in live])
                    v = paddle.concat([v_parts[i] for i in live])
                params = [ps[i] for i in live]
                g = _flat(paddle, [p.grad for p in params])
                p = _flat(paddle, params) * (1 - lr * wd)
                m = m + (g - m) * (1 - self.beta1)
                # addcmul_(g, g, value=1-b2): (value * g) * g
                v = v * self.beta2 + g * (1 - self.beta2) * g
                denom = v.sqrt() / bc2_sqrt + self.eps
                p = p - (lr / bc1) * (m / denom)
                live_sizes = [sizes[i] for i in live]
                # the kernels of Tensor.reshape and set_value without their Python layers
                # (about 5 us less per trained tensor; the same values copied)
                for param, new in zip(params, paddle.split(p, live_sizes)):
                    _C_ops.assign_out_(_C_ops.reshape(new, param.shape), param)
                if everything:
                    self.exp_avg[gi], self.exp_avg_sq[gi] = m, v
                else:
                    for i, new_m, new_v in zip(
                        live, paddle.split(m, live_sizes), paddle.split(v, live_sizes)
                    ):
                        m_parts[i], v_parts[i] = new_m, new_v
                    self.exp_avg[gi] = paddle.concat(m_parts)
                    self.exp_avg_sq[gi] = paddle.concat(v_parts)

    def state_dict(self):
        out = {"step": np.array(self.step_count), "lr": np.array(self.lr)}
        for gi, (ps, _, _) in enumerate(self.groups):
            sizes = self.sizes[gi]
            ms = np.split(self.exp_avg[gi].numpy(), np.cumsum(sizes)[:-1])
            vs = np.split(self.exp_avg_sq[gi].numpy(), np.cumsum(sizes)[:-1])
            for pi, (p, m, v) in enumerate(zip(ps, ms, vs)):
                out[f"m_{gi}_{pi}"] = m.reshape(p.shape)
                out[f"v_{gi}_{pi}"] = v.reshape(p.shape)
        return out

    def set_state_dict(self, state):
        paddle = self.paddle
        self.step_count = int(state["step"])
        self.lr = float(state["lr"])
        for gi, (ps, _, _) in enumerate(self.groups):
            for name, target in (("m", self.exp_avg), ("v", self.exp_avg_sq)):
                flat = np.concatenate(
                    [np.asarray(state[f"{name}_{gi}_{pi}"]).reshape(-1) for pi in range(len(ps))]
                )
                target[gi] = paddle.to_tensor(flat).astype(target[gi].dtype)
