"""Minimal reproduction: ZeRO (group-sharded) training on CPU with Paddle 3.3.1.

    PADDLE_DISTRI_BACKEND=gloo python -m paddle.distributed.launch --nproc_per_node 2 \\
        benchmarks/repro_group_sharded_cpu.py os      # stage 1 (os), 2 (os_g) or 3 (p_g_os)

On CPU every level stops with ``AssertionError: group_sharded_parallel only support gpu, xpu
and custom_device now`` on every rank, before any step: ZeRO needs GPUs (or XPUs) in Paddle.
"""

import sys

import paddle
import paddle.distributed as dist
from paddle.distributed.sharding import group_sharded_parallel

level = sys.argv[1] if len(sys.argv) > 1 else "os_g"
dist.init_parallel_env()
paddle.seed(0)
model = paddle.nn.Sequential(paddle.nn.Linear(8, 16), paddle.nn.Linear(16, 4))
opt = paddle.optimizer.AdamW(learning_rate=1e-3, parameters=model.parameters())
try:
    model, opt, _ = group_sharded_parallel(model, opt, level=level)
    loss = model(paddle.randn([4, 8])).mean()
    loss.backward()
    opt.step()
    opt.clear_grad()
    print(f"rank {dist.get_rank()}: level {level} OK, loss {float(loss):.6f}", flush=True)
except Exception as exc:
    print(
        f"rank {dist.get_rank()}: level {level} FAILED: {type(exc).__name__}: {str(exc)[:400]}",
        flush=True,
    )
    raise
