"""Multi-process training through ``paddle.distributed`` (collective data parallel).

``ppgotocr train`` runs unchanged under ``python -m paddle.distributed.launch``: the launcher
sets the rank environment, :func:`init` starts the process group, the trainer wraps its loss
module in ``paddle.DataParallel`` and every rank reads its own share of each global batch from
:class:`GlobalBatchSampler`. Nothing here talks to other processes except through Paddle's
collectives.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from ._errors import UserError


class RanksDisagree(UserError):
    """The processes of one run were started with different arguments or data."""


def launched_world_size() -> int:
    """Number of processes the Paddle launcher started (1 when not launched)."""
    for key in ("PADDLE_TRAINERS_NUM", "WORLD_SIZE"):
        value = os.environ.get(key)
        if value and value.isdigit():
            return int(value)
    return 1


def init() -> tuple[int, int]:
    """(rank, world size); starts Paddle's process group when launched with several ranks."""
    if launched_world_size() <= 1:
        return 0, 1
    import paddle.distributed as dist

    if not dist.is_initialized():
        dist.init_parallel_env()
    return dist.get_rank(), dist.get_world_size()


def all_reduce_sum(values, world: int) -> np.ndarray:
    """Element-wise sum over ranks of a small float64 vector (plain numpy when alone)."""
    values = np.asarray(values, dtype=np.float64)
    if world <= 1:
        return values
    import paddle
    import paddle.distributed as dist

    t = paddle.to_tensor(values)
    dist.all_reduce(t)
    return t.numpy()


def check_ranks_agree(world: int, **facts) -> None:
    """Raise ``RanksDisagree`` on every rank when the ranks' ``facts`` are not all equal.

    Each rank hashes its facts (arguments, data file contents, model config); the hashes are
    gathered, so a rank started with other flags or another data file stops the run with a
    message instead of training on inconsistent batches or hanging in a collective.
    """
    if world <= 1:
        return
    import paddle
    import paddle.distributed as dist

    digests = {}
    for name, value in facts.items():
        blob = json.dumps(value, sort_keys=True, default=str).encode()
        digests[name] = int.from_bytes(hashlib.sha256(blob).digest()[:7], "little")
    mine = paddle.to_tensor(np.array(list(digests.values()), dtype=np.int64))
    gathered = []
    dist.all_gather(gathered, mine)
    table = np.stack([g.numpy() for g in gathered])
    differing = [name for i, name in enumerate(digests) if len(set(table[:, i])) > 1]
    if differing:
        raise RanksDisagree(
            f"the {world} processes were started with different "
            f"{', '.join(differing)}; every rank must get the same command line "
            "and the same files"
        )


class GlobalBatchSampler:
    """Seeded, resumable order of global micro-batches, each split across the ranks.

    Epoch ``e`` visits the samples in ``RandomState(seed + e).permutation(n)``; a global
    micro-batch is ``batch_size x world`` consecutive samples (the last one of an epoch may
    be smaller) and rank ``r`` takes the ``r``-th of ``world`` near-equal parts. The order is
    independent of ``world`` for a fixed global batch, so a run may resume on another number
    of processes. A rank whose part is empty gets ``[]`` and contributes no tokens.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if n <= 0:
            raise ValueError("no samples")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world = rank, world

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world

    def micro_batches_per_epoch(self) -> int:
        return -(-self.n // self.global_batch)

    def __iter__(self):
        epoch = 0
        while True:
            order = np.random.RandomState(self.seed + epoch).permutation(self.n)
            for start in range(0, self.n, self.global_batch):
                chunk = order[start : start + self.global_batch]
                yield [int(i) for i in np.array_split(chunk, self.world)[self.rank]]
            epoch += 1
