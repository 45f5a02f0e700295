"""``upgrade-program``: Paddle 2.x inference models with retired operators -> Paddle 3 PIR models.

Reading and rewriting need no Paddle (our own protobuf schema, rules shipped as data); the last
step, translating to PIR and saving ``NEW_PREFIX.json`` + ``NEW_PREFIX.pdiparams``, uses the
installed Paddle >= 3.0.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .._atomic import atomic_file, prepare_output
from .._errors import UserError

# The reader (protobuf) and the rewriter (numpy) are imported where they are used, so that the
# command line can register ``upgrade-program`` without importing either (``--help`` stays fast).

__all__ = ["UpgradeResult", "find_model", "rewrite_program", "upgrade_program"]


@dataclass
class UpgradeResult:
    model: Path
    params: Path | None
    rewritten: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def find_model(old: str | Path) -> tuple[Path, Path | None]:
    """(program file, parameter file or folder or None) of an old model given as a prefix
    (``dir/inference`` -> ``.pdmodel``/``.pdiparams``), a ``.pdmodel`` file, or a folder with
    ``__model__`` (+ ``__params__`` or one file per parameter)."""
    p = Path(old)
    if p.is_dir():
        for stem in ("__model__", "model.pdmodel", "inference.pdmodel"):
            if (p / stem).is_file():
                model = p / stem
                break
        else:
            raise UserError("is a folder without __model__, model.pdmodel or inference.pdmodel", p)
        for cand in ("__params__", "params", model.with_suffix(".pdiparams").name):
            if (p / cand).is_file() and cand != model.name:
                return model, p / cand
        return model, p  # one file per parameter (or none)
    if p.suffix == ".pdmodel":
        model = p
    elif p.suffix in (".pdiparams", ".json"):
        raise UserError(
            "give the model prefix (without .pdiparams / .json) or the .pdmodel file", p
        )
    else:
        model = p.with_name(p.name + ".pdmodel")
    if not model.exists():
        raise UserError("model file does not exist", model)
    if not model.is_file():
        raise UserError("model path is not a file", model)
    params = model.with_suffix(".pdiparams")
    return model, params if params.exists() else None


def _persistables(prog) -> list[tuple[str, str, tuple[int, ...]]]:
    from . import schema

    out = {}
    for block in prog.blocks:
        for v in block.vars:
            if v.persistable and v.type.type not in (schema.FEED_MINIBATCH, schema.FETCH_LIST):
                t = (
                    v.type.lod_tensor.tensor
                    if v.type.HasField("lod_tensor")
                    else v.type.selected_rows
                )
                out[v.name] = (
                    v.name,
                    schema.DTYPES.get(t.data_type, str(t.data_type)),
                    tuple(t.dims),
                )
    return sorted(out.values())


def rewrite_program(data: bytes, path: Path, *, collectives: str = "single-card",
                    known_ops: set[str] | None = None):  # fmt: skip
    """Parse, check and rewrite; returns (program message, report). Raises one ``UserError``
    listing every operator that cannot be carried over."""
    from .program import load_program
    from .rewrite import Rewriter

    prog = load_program(path, data)
    rep = Rewriter(collectives=collectives).rewrite(prog, known_ops)
    problems = list(rep.problems)
    if known_ops is not None:
        unknown: dict[str, int] = {}
        for block in prog.blocks:
            for op in block.ops:
                if op.type not in known_ops and op.type not in ("feed", "fetch"):
                    unknown[op.type] = unknown.get(op.type, 0) + 1
        problems += [f"{t} ({n} op{'s' if n > 1 else ''}): neither this Paddle nor any upgrade rule "
                     "knows it" for t, n in sorted(unknown.items())]  # fmt: skip
    if problems:
        raise UserError(
            f"{len(problems)} operator(s) cannot be upgraded (nothing was written):\n  "
            + "\n  ".join(problems),
            path,
        )
    return prog, rep


def upgrade_program(old: str | Path, new_prefix: str | Path, *, overwrite: bool = False,
                    collectives: str = "single-card", log=None) -> UpgradeResult:  # fmt: skip
    """Upgrade the old model ``old`` to ``new_prefix.json`` + ``new_prefix.pdiparams``."""
    say = log or (lambda msg: print(msg, file=sys.stderr))
    new_prefix = Path(new_prefix)
    if new_prefix.suffix in (".json", ".pdiparams", ".pdmodel"):
        new_prefix = new_prefix.with_suffix("")
    json_out = new_prefix.with_name(new_prefix.name + ".json")
    params_out = new_prefix.with_name(new_prefix.name + ".pdiparams")
    model, params = find_model(old)
    for target in (json_out, params_out):  # refuse before any work
        prepare_output(target, overwrite=overwrite, kind="file")
    data = model.read_bytes()
    say(f"reading {model}")
    from .writer import registered_ops, save_pir

    prog, rep = rewrite_program(data, model, collectives=collectives, known_ops=registered_ops())
    persist = _persistables(prog)
    if persist and params is None:
        raise UserError(f"the program has {len(persist)} persistable tensors but there is no "
                        f"parameter file {model.with_suffix('.pdiparams').name} beside it", model)  # fmt: skip
    if params is not None and params.is_file():
        if not persist:
            raise UserError("the program has no parameters, but this parameter file is beside it; "
                            "it belongs to another model", params)  # fmt: skip
        from .params import check_params

        check_params(params, params.read_bytes(), persist)
    done = ", ".join(f"{k} x{v}" for k, v in sorted(rep.rewritten.items())) or "none"
    say(f"rewrote retired operators: {done}")
    for note in rep.notes:
        say(f"note: {note}")
    say("translating to PIR with Paddle and saving")
    with tempfile.TemporaryDirectory(prefix="paddle-op-migrator-upgrade-") as work:
        made_json, made_params = save_pir(prog.SerializeToString(), rep.created, params,
                                          Path(work), "model", model, rep.notes)  # fmt: skip
        if made_params is not None:
            with atomic_file(params_out, overwrite=overwrite) as fh, open(made_params, "rb") as src:
                shutil.copyfileobj(src, fh)
        elif params_out.exists() and overwrite:
            params_out.unlink()  # the output we were asked to replace, not some other file
        with atomic_file(json_out, overwrite=overwrite) as fh, open(made_json, "rb") as src:
            shutil.copyfileobj(src, fh)
    say(f"wrote {json_out}" + (f" and {params_out}" if made_params is not None else ""))
    return UpgradeResult(
        json_out, params_out if made_params is not None else None, rep.rewritten, rep.notes
    )
