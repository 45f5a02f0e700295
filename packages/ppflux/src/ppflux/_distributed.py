"""Several training processes through ``paddle.distributed`` (collective data parallel).

``ppflux train-dreambooth-lora`` runs unchanged under ``python -m paddle.distributed.launch``:
the launcher sets each process's rank in the environment, :func:`init` starts Paddle's process
group, the trainer wraps the trained modules in ``paddle.DataParallel`` (gradients averaged
over the ranks) and each rank trains its share of every global micro-batch. Every process
talks to the others only through Paddle's collectives; one process alone never starts them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ._errors import UserError


class RanksDisagree(UserError):
    """The processes of one run were given different arguments, data or models."""


def launched_world_size() -> int:
    """How many processes the Paddle launcher started (1 when not launched)."""
    for key in ("PADDLE_TRAINERS_NUM", "WORLD_SIZE"):
        value = os.environ.get(key, "")
        if value.isdigit():
            return int(value)
    return 1


def init() -> tuple[int, int]:
    """(rank, number of processes); starts Paddle's process group when there are several."""
    if launched_world_size() <= 1:
        return 0, 1
    import paddle.distributed as dist

    if not dist.is_initialized():
        dist.init_parallel_env()
    return dist.get_rank(), dist.get_world_size()


def barrier(world: int) -> None:
    if world > 1:
        import paddle.distributed as dist

        dist.barrier()


def sum_over_ranks(values, world: int) -> np.ndarray:
    """Element-wise sum over the ranks of a small float64 vector (unchanged when alone)."""
    values = np.asarray(values, dtype=np.float64)
    if world <= 1:
        return values
    import paddle
    import paddle.distributed as dist

    tensor = paddle.to_tensor(values)
    dist.all_reduce(tensor)
    return tensor.numpy()


def digest(value) -> int:
    """A 56-bit hash of a JSON-able value (fits an int64 tensor exactly)."""
    blob = json.dumps(value, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:7], "little")


def file_digests(paths) -> list[tuple[str, str]]:
    """(file name, sha256 of the contents) per file: what the ranks compare of their data."""
    out = []
    for path in paths:
        sha = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha.update(chunk)
        out.append((Path(path).name, sha.hexdigest()))
    return out


def check_ranks_agree(world: int, **facts) -> None:
    """Stop every rank with :class:`RanksDisagree` when the ranks' ``facts`` differ.

    Each rank hashes each fact (its arguments, its data files, its model's configs); the hashes
    are gathered on every rank, so a process started with other flags or reading other files
    ends the run with a message naming what differs, instead of training on inconsistent
    batches or waiting forever in a collective.
    """
    if world <= 1:
        return
    import paddle
    import paddle.distributed as dist

    names = list(facts)
    mine = paddle.to_tensor(np.array([digest(facts[n]) for n in names], dtype=np.int64))
    gathered = []
    dist.all_gather(gathered, mine)
    table = np.stack([t.numpy() for t in gathered])
    differing = [n for i, n in enumerate(names) if len(set(table[:, i].tolist())) > 1]
    if differing:
        ranks = ", ".join(
            f"{n} (rank {int(np.argmax(table[:, names.index(n)] != table[0, names.index(n)]))} "
            "differs from rank 0)"
            for n in differing
        )
        raise RanksDisagree(
            f"the {world} processes were started with different {ranks}; every process must "
            "get the same command line and see the same files"
        )


def shard(n: int, rank: int, world: int) -> np.ndarray:
    """Positions ``0..n-1`` of a global micro-batch that ``rank`` trains: the ``rank``-th of
    ``world`` near-equal consecutive parts (empty when ``n < world`` for the last ranks)."""
    return np.array_split(np.arange(n), world)[rank]
