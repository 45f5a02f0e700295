"""Paddle 3 side: complete the rewritten ops, translate to PIR and save ``.json`` + ``.pdiparams``.

Paddle's own program translator builds the PIR program from the rewritten ``ProgramDesc`` (the
path Paddle 3 itself takes for old programs), so the result is what ``paddle.jit.load`` and the
Paddle Inference predictor expect. Needs Paddle >= 3.0, imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import UserError
from .._paddle import require_paddle


def registered_ops() -> set[str]:
    from paddle.base import core

    return set(core.get_all_op_names())


def save_pir(program_bytes: bytes, created: list[tuple[int, int]], params_path: Path | None,
             out_dir: Path, name: str, source: Path, notes: list[str] = ()) -> tuple[Path, Path | None]:  # fmt: skip
    """Translate the rewritten program and save ``out_dir/name.json`` (+ ``.pdiparams``)."""
    paddle = require_paddle()
    from paddle.base import core

    was_dynamic = paddle.in_dynamic_mode()
    paddle.enable_static()
    try:
        return _save(
            paddle, core, program_bytes, created, params_path, out_dir, name, source, notes
        )
    finally:
        if was_dynamic:
            paddle.disable_static()


def _save(paddle, core, program_bytes, created, params_path, out_dir, name, source, notes):
    exe = paddle.static.Executor(paddle.CPUPlace())
    scope = paddle.static.Scope()
    with paddle.static.scope_guard(scope):
        with paddle.pir_utils.OldIrGuard():
            prog = paddle.static.Program.parse_from_string(program_bytes)
            for b, i in created:  # ops made by the rewrite: defaults, var types, shapes
                block = prog.block(b)
                desc = block.ops[i].desc
                desc.check_attrs()
                desc.infer_var_type(block.desc)
                desc.infer_shape(block.desc)
            prog._sync_with_cpp()
            skip = (core.VarDesc.VarType.FEED_MINIBATCH, core.VarDesc.VarType.FETCH_LIST)
            params = [v for v in prog.list_vars() if v.persistable and v.type not in skip]
            if params and params_path.is_dir():  # old layout: one file per parameter
                missing = [v.name for v in params if not (params_path / v.name).is_file()]
                if missing:
                    more = " ..." if len(missing) > 5 else ""
                    raise UserError(f"no parameter file for {len(missing)} persistable tensors of "
                                    f"the program ({', '.join(missing[:5])}{more})", params_path)  # fmt: skip
                paddle.static.load_vars(
                    exe, dirname=str(params_path), main_program=prog, vars=params
                )
            elif params:
                paddle.static.load_vars(exe, dirname=str(params_path.parent), main_program=prog,
                                        vars=params, filename=params_path.name)  # fmt: skip
        with paddle.pir_utils.IrGuard():
            try:
                pir_prog = paddle.pir.translate_to_pir(prog.desc)
            except Exception as exc:  # Paddle raises several types; all mean "cannot translate"
                lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
                named = [ln for ln in lines if ln.startswith("(")]  # "(Fatal) Op crop should ..."
                why = (named or lines or [repr(exc)])[0]
                raise UserError(f"Paddle 3 cannot translate the upgraded program: {why}"
                                + "".join(f"\n  {n}" for n in notes), source) from None  # fmt: skip
            block = pir_prog.global_block()
            feeds, fetches, drop = [], [], []
            for op in block.ops:
                if op.name() == "pd_op.feed":
                    value = op.result(0)
                    with paddle.static.program_guard(pir_prog):
                        data = paddle.static.data(
                            name=op.attrs()["name"], shape=value.shape, dtype=value.dtype
                        )
                    value.replace_all_uses_with(data)
                    data.get_defining_op().move_before(op)
                    drop.append(op)
                    feeds.append((op.attrs().get("col", len(feeds)), data))
                elif op.name() == "pd_op.fetch":
                    fetches.append((op.attrs().get("col", len(fetches)), op.operand_source(0)))
                    drop.append(op)
            for op in drop:
                block.remove_op(op)
            # the old program's feed/fetch order is the ``col`` of its feed/fetch ops
            feeds = [v for _, v in sorted(feeds, key=lambda t: t[0])]
            # loaders take the inputs in the order of the data ops
            anchor = next((op for op in block.ops if op.name() != "pd_op.data"), None)
            if anchor is not None:
                for data in feeds:
                    data.get_defining_op().move_before(anchor)
            fetches = [v for _, v in sorted(fetches, key=lambda t: t[0])]
            prefix = os.path.join(str(out_dir), name)
            paddle.static.save_inference_model(prefix, feeds, fetches, exe, program=pir_prog)
    params_out = Path(prefix + ".pdiparams")
    return Path(prefix + ".json"), params_out if params_out.exists() else None
