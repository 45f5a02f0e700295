"""Streaming checkpoint conversion: Hugging Face folder -> Paddle folder.

Peak memory stays near the largest tensor: headers are validated first (nothing is written
when anything is wrong), then each tensor is read, cast, transposed, hashed and appended to
its output shard.  The output is built in a temporary sibling folder and renamed into place,
so ``OUT_DIR`` appears complete or not at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from . import __version__
from .checkpoint import TOKENIZER_FILES, SourceShard, SourceTensor, open_checkpoint
from .config import DecoderConfig, load_hf_config
from .errors import CheckpointError
from .mapping import expected_tensors, is_ignored, target_name
from .safetensors_io import (
    FLOAT_CODES,
    NAME_TO_ST,
    ST_TO_NAME,
    PlannedTensor,
    StreamingWriter,
    cast,
)

TARGETS = ("paddle", "paddlenlp")
DTYPES = ("keep", "float32", "float16", "bfloat16")
REPORT_NAME = "conversion_report.json"
WEIGHTS_INDEX = "model.safetensors.index.json"


@dataclass
class _Job:
    source: SourceTensor
    shard: SourceShard
    target: str
    transpose: bool
    out_dtype: str

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(reversed(self.source.shape)) if self.transpose else self.source.shape


def plan_conversion(hf_dir: str | Path, target: str = "paddle", dtype: str = "keep"):
    """Validate everything and return (raw config, config, shards, jobs, ignored names).

    Raises before any byte is written: unsupported architecture, missing shards, truncated
    files, unknown or missing tensors, shape mismatches.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    raw, cfg = load_hf_config(hf_dir)
    if target == "paddlenlp":
        from .paddlenlp_target import check_supported

        check_supported(cfg)
    shards = open_checkpoint(hf_dir)
    expected = expected_tensors(cfg)
    seen: dict[str, SourceTensor] = {}
    jobs: list[_Job] = []
    ignored: list[str] = []
    unknown: list[str] = []
    problems: list[str] = []
    for shard in shards:
        for t in shard.tensors:
            if t.name in seen:
                problems.append(f"{t.name!r} appears in both {seen[t.name].file.name} and {t.file.name}")
                continue
            seen[t.name] = t
            spec = expected.get(t.name)
            if spec is None:
                (ignored if is_ignored(t.name, cfg) else unknown).append(t.name)
                continue
            if t.shape != spec.shape:
                problems.append(f"{t.file.name}: {t.name!r} has shape {list(t.shape)}, config.json implies {list(spec.shape)}")
            if t.dtype not in FLOAT_CODES:
                problems.append(f"{t.file.name}: {t.name!r} has non-float dtype {t.dtype}")
            out = t.dtype if dtype == "keep" else NAME_TO_ST[dtype]
            jobs.append(_Job(t, shard, target_name(t.name, cfg, target), spec.transpose, out))
    if unknown:
        problems.append(
            f"{len(unknown)} unknown tensor(s) for a {cfg.model_type} config (wrong architecture or config?): "
            f"{unknown[:8]}{' ...' if len(unknown) > 8 else ''}"
        )
    missing = [name for name in expected if name not in seen]
    if missing:
        problems.append(f"{len(missing)} tensor(s) missing from the checkpoint: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if problems:
        raise CheckpointError(f"{hf_dir}: cannot convert:\n  - " + "\n  - ".join(problems))
    return raw, cfg, shards, jobs, ignored


BLOCK_BYTES = 32 << 20


def _blocks(source: np.ndarray, job: _Job, digest):
    """Output rows in blocks of ~32 MB: cast (and transpose) one block at a time.

    Peak memory is the source tensor plus one block, instead of two or three full copies.
    """
    if job.transpose:  # output row r = source column r
        rows, row_bytes = source.shape[1], source.shape[0] * source.itemsize
    else:
        rows = source.shape[0] if source.ndim else 1
        row_bytes = max(1, source.nbytes // max(rows, 1))
    step = max(1, BLOCK_BYTES // max(row_bytes, 1))
    for r0 in range(0, max(rows, 1), step):
        if source.ndim == 0:
            block = source
        elif job.transpose:
            block = np.ascontiguousarray(source[:, r0:r0 + step].T)
        else:
            block = source[r0:r0 + step]
        block = np.ascontiguousarray(cast(block, job.source.dtype, job.out_dtype))
        digest.update(memoryview(block).cast("B"))
        yield block


def _shard_names(count: int) -> list[str]:
    if count == 1:
        return ["model.safetensors"]
    return [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)]


def convert(
    hf_dir: str | Path,
    out_dir: str | Path,
    target: str = "paddle",
    dtype: str = "keep",
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Convert ``hf_dir`` into ``out_dir`` and return the conversion report."""
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir}: already exists (pass overwrite=True / --overwrite to replace it)")
    started = time.perf_counter()
    raw, cfg, shards, jobs, ignored = plan_conversion(hf_dir, target, dtype)

    by_shard: dict[Path, list[_Job]] = {}
    for job in jobs:
        by_shard.setdefault(job.shard.path, []).append(job)
    groups = [by_shard[s.path] for s in shards if s.path in by_shard]
    names = _shard_names(len(groups))

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    report_tensors: list[dict[str, Any]] = []
    weight_map: dict[str, str] = {}
    total_in = sum(j.source.nbytes for j in jobs)
    total_out = 0
    try:
        bar = tqdm(total=total_in, unit="B", unit_scale=True, desc="convert", disable=not progress)
        for fname, group in zip(names, groups):
            plan = [PlannedTensor(j.target, j.out_dtype, j.out_shape) for j in group]
            with StreamingWriter(tmp / fname, plan, metadata={"format": "np"}) as writer:
                for job in group:
                    source = job.shard.read(job.source.name)
                    digest = hashlib.sha256()
                    writer.write_chunks(job.target, _blocks(source, job, digest))
                    total_out += writer.plan[job.target].nbytes
                    weight_map[job.target] = fname
                    report_tensors.append({
                        "source": job.source.name,
                        "source_file": job.source.file.name,
                        "source_shape": list(job.source.shape),
                        "source_dtype": ST_TO_NAME.get(job.source.dtype, job.source.dtype),
                        "target": job.target,
                        "target_file": fname,
                        "target_shape": list(job.out_shape),
                        "target_dtype": ST_TO_NAME.get(job.out_dtype, job.out_dtype),
                        "transposed": job.transpose,
                        "sha256": digest.hexdigest(),
                    })
                    del source
                    bar.update(job.source.nbytes)
        bar.close()
        if len(names) > 1:
            (tmp / WEIGHTS_INDEX).write_text(json.dumps(
                {"metadata": {"total_size": total_out}, "weight_map": weight_map}, indent=2) + "\n")
        out_dtype = _dominant_dtype(jobs)
        _write_configs(tmp, raw, cfg, target, out_dtype)
        copied = []
        for name in TOKENIZER_FILES:
            src = hf_dir / name
            if src.is_file():
                shutil.copy2(src, tmp / name)
                copied.append(name)
        elapsed = time.perf_counter() - started
        report = {
            "x2paddle_llm_version": __version__,
            "source": str(hf_dir.resolve()),
            "target": target,
            "model_type": cfg.model_type,
            "dtype": out_dtype,
            "tensors_mapped": len(report_tensors),
            "tensors_ignored": ignored,
            "source_files": [s.path.name for s in shards],
            "output_files": names,
            "tokenizer_files": copied,
            "bytes_read": total_in,
            "bytes_written": total_out,
            "seconds": round(elapsed, 3),
            "mb_per_s": round(total_in / 1e6 / max(elapsed, 1e-9), 1),
            "tensors": report_tensors,
        }
        (tmp / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _dominant_dtype(jobs: list[_Job]) -> str:
    codes = [j.out_dtype for j in jobs]
    code = max(set(codes), key=codes.count) if codes else "F32"
    return ST_TO_NAME[code]


def _write_configs(folder: Path, raw: dict, cfg: DecoderConfig, target: str, out_dtype: str) -> None:
    cfg = DecoderConfig.from_dict({**cfg.to_dict(), "dtype": out_dtype})
    (folder / "source_config.json").write_text(json.dumps(raw, indent=2) + "\n")
    if target == "paddle":
        cfg.save(folder)
    else:
        from .paddlenlp_target import paddlenlp_config

        (folder / "config.json").write_text(json.dumps(paddlenlp_config(cfg), indent=2) + "\n")
        cfg.save(folder, name="x2paddle_llm_config.json")


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
