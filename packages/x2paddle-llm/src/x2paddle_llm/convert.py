"""Streaming checkpoint conversion: Hugging Face folder -> Paddle folder.

Peak memory stays near the largest tensor: headers are validated first (nothing is written
when anything is wrong), then each tensor is read, cast, transposed, hashed and appended to
its output shard.  The output is built in a temporary sibling folder and renamed into place,
so ``OUT_DIR`` appears complete or not at all.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from . import __version__
from ._atomic import atomic_dir, prepare_output
from ._safetensors import FLOAT_CODES, PlannedTensor, StreamingWriter, cast
from .checkpoint import TOKENIZER_FILES, SourceShard, SourceTensor, open_checkpoint
from .config import DecoderConfig, load_hf_config
from .errors import CheckpointError
from .families import get_family
from .schema import TensorSpec, by_source, expected_tensors

TARGETS = ("paddle", "paddlenlp")
DTYPES = ("keep", "float32", "float16", "bfloat16")
NAME_TO_ST = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64"}
ST_TO_NAME = {v: k for k, v in NAME_TO_ST.items()}
REPORT_NAME = "conversion_report.json"
WEIGHTS_INDEX = "model.safetensors.index.json"


@dataclass
class _Job:
    source: SourceTensor
    shard: SourceShard
    spec: TensorSpec
    target: str
    out_dtype: str

    @property
    def transpose(self) -> bool:
        return self.spec.transpose

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.spec.shape

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.spec.shape:
            n *= d
        return n * {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}[self.source.dtype]


def _target_name(spec: TensorSpec, cfg: DecoderConfig, target: str) -> str:
    """The package's own model uses its block names; PaddleNLP keeps the Hugging Face names
    with its class's prefix instead of ``model``."""
    if target == "paddle":
        return spec.name
    prefix = get_family(cfg.model_type).paddlenlp_prefix
    return (
        prefix + spec.hf_name[len("model") :] if spec.hf_name.startswith("model.") else spec.hf_name
    )


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
    family = get_family(cfg.model_type)
    shards = open_checkpoint(hf_dir)
    expected = by_source(expected_tensors(cfg))
    seen: dict[str, SourceTensor] = {}
    jobs: list[_Job] = []
    ignored: list[str] = []
    unknown: list[str] = []
    problems: list[str] = []
    for shard in shards:
        for t in shard.tensors:
            if t.name in seen:
                problems.append(
                    f"{t.name!r} appears in both {seen[t.name].file.name} and {t.file.name}"
                )
                continue
            seen[t.name] = t
            specs = expected.get(t.name)
            if specs is None:
                (ignored if family.is_ignored(t.name, cfg) else unknown).append(t.name)
                continue
            if t.shape != specs[0].hf_shape:
                problems.append(
                    f"{t.file.name}: {t.name!r} has shape {list(t.shape)}, config.json implies {list(specs[0].hf_shape)}"
                )
                continue
            if t.dtype not in FLOAT_CODES:
                problems.append(f"{t.file.name}: {t.name!r} has non-float dtype {t.dtype}")
                continue
            out = t.dtype if dtype == "keep" else NAME_TO_ST[dtype]
            jobs += [_Job(t, shard, spec, _target_name(spec, cfg, target), out) for spec in specs]
    if unknown:
        problems.append(
            f"{len(unknown)} unknown tensor(s) for a {cfg.model_type} config (wrong architecture or config?): "
            f"{unknown[:8]}{' ...' if len(unknown) > 8 else ''}"
        )
    missing = [name for name in expected if name not in seen]
    if missing:
        problems.append(
            f"{len(missing)} tensor(s) missing from the checkpoint: {missing[:8]}{' ...' if len(missing) > 8 else ''}"
        )
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
            block = np.ascontiguousarray(source[:, r0 : r0 + step].T)
        else:
            block = source[r0 : r0 + step]
        block = np.ascontiguousarray(cast(block, job.source.dtype, job.out_dtype))
        digest.update(memoryview(block).cast("B"))
        yield block


def _shard_names(count: int) -> list[str]:
    if count == 1:
        return ["model.safetensors"]
    return [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)]


def check_side_files(hf_dir: Path) -> list[str]:
    """Validate the tokenizer and generation files that will be copied; return their names.

    A damaged ``tokenizer.json`` copied into a folder that looks complete would only fail later,
    in ``generate``; it is refused here, before anything is written.
    """
    from ._errors import read_json_object, read_text

    present = [name for name in TOKENIZER_FILES if (hf_dir / name).is_file()]
    for name in present:
        path = hf_dir / name
        if name.endswith(".json"):
            read_json_object(path, what=name)
        elif name in ("merges.txt", "chat_template.jinja"):
            read_text(path, what=name)
    if "tokenizer.json" in present:
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_file(str(hf_dir / "tokenizer.json"))
        except Exception as exc:  # the Rust library raises plain Exceptions
            raise CheckpointError(
                f"{hf_dir / 'tokenizer.json'}: not a tokenizer the tokenizers library reads "
                f"({str(exc).splitlines()[0][:200]})"
            ) from None
    return present


def convert(
    hf_dir: str | Path,
    out_dir: str | Path,
    target: str = "paddle",
    dtype: str = "keep",
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Convert ``hf_dir`` into ``out_dir`` and return the conversion report.

    ``out_dir`` appears complete or not at all; an existing non-empty ``out_dir`` is refused
    unless ``overwrite``, and then replaced only once the new output is complete.
    """
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    prepare_output(out_dir, overwrite=overwrite)
    started = time.perf_counter()
    raw, cfg, shards, jobs, ignored = plan_conversion(hf_dir, target, dtype)
    side_files = check_side_files(hf_dir)

    by_shard: dict[Path, list[_Job]] = {}
    for job in jobs:
        by_shard.setdefault(job.shard.path, []).append(job)
    groups = [by_shard[s.path] for s in shards if s.path in by_shard]
    names = _shard_names(len(groups))

    report_tensors: list[dict[str, Any]] = []
    weight_map: dict[str, str] = {}
    total_in = sum(j.nbytes for j in jobs)
    total_out = 0
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        bar = tqdm(total=total_in, unit="B", unit_scale=True, desc="convert", disable=not progress)
        for fname, group in zip(names, groups):
            plan = [PlannedTensor(j.target, j.out_dtype, j.out_shape) for j in group]
            with StreamingWriter(tmp / fname, plan, metadata={"format": "np"}) as writer:
                cached_name, cached = None, None
                for job in group:
                    if job.source.name != cached_name:  # a fused source feeds several jobs in a row
                        cached_name, cached = job.source.name, job.shard.read(job.source.name)
                    source = (
                        cached
                        if job.spec.index is None
                        else np.ascontiguousarray(cached[job.spec.index])
                    )
                    digest = hashlib.sha256()
                    writer.write_chunks(job.target, _blocks(source, job, digest))
                    total_out += writer.plan[job.target].nbytes
                    weight_map[job.target] = fname
                    report_tensors.append(
                        {
                            "source": job.source.name,
                            "source_file": job.source.file.name,
                            "source_shape": list(job.source.shape),
                            "source_dtype": ST_TO_NAME.get(job.source.dtype, job.source.dtype),
                            "source_slice": job.spec.describe_index(),
                            "target": job.target,
                            "target_file": fname,
                            "target_shape": list(job.out_shape),
                            "target_dtype": ST_TO_NAME.get(job.out_dtype, job.out_dtype),
                            "transposed": job.transpose,
                            "sha256": digest.hexdigest(),
                        }
                    )
                    del source
                    bar.update(job.nbytes)
                del cached
        bar.close()
        if len(names) > 1:
            (tmp / WEIGHTS_INDEX).write_text(
                json.dumps(
                    {"metadata": {"total_size": total_out}, "weight_map": weight_map}, indent=2
                )
                + "\n"
            )
        out_dtype = _dominant_dtype(jobs)
        _write_configs(tmp, raw, cfg, target, out_dtype)
        for name in side_files:
            shutil.copyfile(hf_dir / name, tmp / name)
        elapsed = time.perf_counter() - started
        report = {
            "x2paddle_llm_version": __version__,
            "source": hf_dir.name,
            "target": target,
            "model_type": cfg.model_type,
            "dtype": out_dtype,
            "tensors_mapped": len(report_tensors),
            "tensors_ignored": ignored,
            "source_files": [s.path.name for s in shards],
            "output_files": names,
            "tokenizer_files": side_files,
            "bytes_read": total_in,
            "bytes_written": total_out,
            "seconds": round(elapsed, 3),
            "mb_per_s": round(total_in / 1e6 / max(elapsed, 1e-9), 1),
            "tensors": report_tensors,
        }
        (tmp / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _dominant_dtype(jobs: list[_Job]) -> str:
    codes = [j.out_dtype for j in jobs]
    code = max(set(codes), key=codes.count) if codes else "F32"
    return ST_TO_NAME[code]


def _write_configs(
    folder: Path, raw: dict, cfg: DecoderConfig, target: str, out_dtype: str
) -> None:
    cfg = DecoderConfig.from_dict({**cfg.to_dict(), "dtype": out_dtype})
    (folder / "source_config.json").write_text(json.dumps(raw, indent=2) + "\n")
    if target == "paddle":
        cfg.save(folder)
    else:
        from .paddlenlp_target import paddlenlp_config

        (folder / "config.json").write_text(json.dumps(paddlenlp_config(cfg), indent=2) + "\n")
        cfg.save(folder, name="x2paddle_llm_config.json")
