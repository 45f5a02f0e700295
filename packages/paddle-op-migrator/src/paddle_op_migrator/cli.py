"""Command line: ``paddle-op-migrator {lists,scan,plan,apply,verify,audit-wheel,audit-diff,upgrade-program}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from ._errors import run_cli
from .errors import MigratorError
from .io_utils import check_outputs, read_json, write_atomic, write_json
from .lists import load_list

EPILOG = """\
workflow on a Paddle clone (no Paddle installation needed for the first four steps):
  paddle-op-migrator scan --paddle-src ~/Paddle --list task1 --out inv.json
  paddle-op-migrator plan --inventory inv.json --out plan          # plan.md, plan.csv, plan.json
  paddle-op-migrator apply --paddle-src ~/Paddle --plan plan.json --verdict DELETE > delete.patch
  paddle-op-migrator verify --paddle-src ~/Paddle
needs an installed paddlepaddle (or paddlepaddle-gpu), any version from 2.6:
  paddle-op-migrator audit-wheel --list all --out census.json
  paddle-op-migrator audit-diff before.json after.json --out diff.json
"""


def _warn(msgs: list[str]) -> None:
    for m in msgs:
        print(f"warning: {m}", file=sys.stderr)


def cmd_lists(a) -> int:
    for e in load_list(a.list):
        print(f"{e.list_name}\t{e.row}\t{e.name}")
    return 0


def cmd_scan(a) -> int:
    from .scanner import scan

    check_outputs(a.out, overwrite=a.overwrite)
    inv = scan(a.paddle_src, load_list(a.list), progress=True)
    inv["list"] = a.list
    _warn(inv["warnings"])
    write_json(a.out, inv, overwrite=a.overwrite)
    absent = sum(e["status"] == "absent" for e in inv["entries"])
    print(
        f"scanned {inv['files_scanned']} files ({inv['lines_scanned']} lines) in {inv['seconds']} s: "
        f"{len(inv['entries'])} entries -> {len(inv['ops'])} ops, {absent} entries absent; wrote {a.out}"
    )
    return 0


def _inventory(a) -> dict:
    if a.inventory:
        from .records import load_inventory

        return load_inventory(a.inventory)
    if not a.paddle_src:
        raise MigratorError("give --inventory FILE or --paddle-src DIR")
    from .scanner import scan

    inv = scan(a.paddle_src, load_list(a.list), progress=True)
    _warn(inv["warnings"])
    return inv


def cmd_plan(a) -> int:
    from .planner import plan, to_csv, to_markdown

    out = Path(a.out)
    outs = [out.with_suffix(x) for x in (".json", ".csv", ".md")]
    check_outputs(*outs, overwrite=a.overwrite)
    decisions = plan(_inventory(a))
    write_json(outs[0], decisions, overwrite=a.overwrite)
    write_atomic(outs[1], to_csv(decisions), overwrite=a.overwrite)
    write_atomic(outs[2], to_markdown(decisions), overwrite=a.overwrite)
    counts: dict[str, int] = {}
    for d in decisions:
        counts[d["verdict"]] = counts.get(d["verdict"], 0) + 1
    print(f"{len(decisions)} ops: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"wrote {out.with_suffix('.md')}, .csv, .json")
    return 0


def cmd_apply(a) -> int:
    from .apply import apply_plan
    from .planner import plan

    if a.out:
        check_outputs(a.out, overwrite=a.overwrite)
    if a.plan:
        from .records import load_plan

        decisions = load_plan(a.plan)
    else:
        decisions = plan(_inventory(a))
    res = apply_plan(
        Path(a.paddle_src), decisions, ops=a.op or None, verdicts=a.verdict or None, write=a.write
    )
    if a.write:
        print(
            f"edited {len(res.changed)} files ({len(res.deleted)} deleted, {len(res.created)} created)",
            file=sys.stderr,
        )
    elif a.out:
        write_atomic(a.out, res.patch, overwrite=a.overwrite)
        print(f"wrote {a.out} ({len(res.changed)} files)", file=sys.stderr)
    else:
        sys.stdout.write(res.patch)
    for note in res.human:
        print(f"needs a human: {note}", file=sys.stderr)
    return 0


def cmd_verify(a) -> int:
    from .verify import verify

    if a.out:
        check_outputs(a.out, overwrite=a.overwrite)
    rep = verify(
        Path(a.paddle_src),
        compile_check=not a.no_compile,
        baseline=Path(a.baseline) if a.baseline else None,
        include=a.include,
        progress=True,
    )
    if a.out:
        write_json(a.out, rep, overwrite=a.overwrite)
    for p in rep["problems"]:
        print(f"problem: {p}")
    for t in rep["todos"]:
        print(f"todo: {t}")
    print(
        f"compile check: {rep['compile']['status']}"
        + (f" ({rep['compile']['reason']})" if rep["compile"].get("reason") else "")
    )
    ce = rep["compile_edited"]
    print(
        f"edited files compile check: {ce['status']}"
        + (
            f" ({ce['reason']})"
            if ce.get("reason")
            else f" ({len(ce.get('passed', []))} passed, {len(ce.get('failures', []))} failed, "
            f"{len(ce.get('not_checkable', []))} not checkable here)"
        )
    )
    print(f"baseline: {rep['baseline']} ({rep['baseline_problems']} problems there, not reported)")
    print("verify: OK" if rep["ok"] else f"verify: {len(rep['problems'])} problem(s)")
    return 0 if rep["ok"] else 1


def cmd_audit_wheel(a) -> int:
    from .audit import audit_wheel

    check_outputs(a.out, overwrite=a.overwrite)
    census = audit_wheel(load_list(a.list))
    write_json(a.out, census, overwrite=a.overwrite)
    print(f"paddle {census['paddle_version']}: {len(census['ops'])} ops audited; wrote {a.out}")
    return 0


def cmd_audit_diff(a) -> int:
    from .audit import audit_diff, diff_markdown

    if a.out:
        check_outputs(a.out, Path(a.out).with_suffix(".md"), overwrite=a.overwrite)
    before = read_json(a.before, "census")
    after = read_json(a.after, "census")
    diff = audit_diff(before, after)
    md = diff_markdown(diff, before, after)
    if a.out:
        write_json(a.out, diff, overwrite=a.overwrite)
        write_atomic(Path(a.out).with_suffix(".md"), md, overwrite=a.overwrite)
    sys.stdout.write(md)
    return 0


class _ShowDefaults(argparse.HelpFormatter):
    """Help lines end with the option's default when it has a real one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            action.option_strings
            and action.default not in (None, False, [], argparse.SUPPRESS)
            and "%(default)" not in text
        ):
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="paddle-op-migrator",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Census, verdicts and patches that retire Paddle's legacy fluid operator "
        "registrations (paddle/fluid/operators) into the PHI operator library.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"paddle-op-migrator {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    lst = "task1, task2, all, or a text file of names (commas/newlines, # comments)"

    s = sub.add_parser("lists", help="print a list with its row numbers")
    s.add_argument("--list", default="all", help=lst)
    s.set_defaults(fn=cmd_lists)

    s = sub.add_parser("scan", help="find every registration site and reference (no Paddle needed)")
    s.add_argument("--paddle-src", required=True, help="root of a PaddlePaddle/Paddle checkout")
    s.add_argument("--list", default="all", help=lst)
    s.add_argument("--out", required=True, help="inventory JSON to write")
    s.set_defaults(fn=cmd_scan)

    for name, fn, hlp in (
        ("plan", cmd_plan, "one verdict per op from ordered rules, with evidence"),
        ("apply", cmd_apply, "write the patch (unified diff) or edit the tree"),
    ):
        s = sub.add_parser(name, help=hlp)
        s.add_argument("--inventory", help="inventory JSON from 'scan'")
        s.add_argument("--paddle-src", required=name == "apply", help="scan this checkout")
        s.add_argument("--list", default="all", help=lst)
        s.set_defaults(fn=fn)
    sub.choices["plan"].add_argument(
        "--out", required=True, help="output stem: writes STEM.md, STEM.csv, STEM.json"
    )
    ap = sub.choices["apply"]
    ap.add_argument("--plan", help="plan JSON from 'plan' (else the plan is computed now)")
    ap.add_argument("--op", action="append", help="only this op (repeatable)")
    ap.add_argument(
        "--verdict",
        action="append",
        help="only ops with this verdict (repeatable; default DELETE, MIGRATE, MIGRATE_LEGACY). "
        "DELETE removes the op everywhere; MIGRATE* generates the PHI side (kernels with "
        "CPU/GPU bodies, InferMeta, yaml, backward yaml from the GradOpMaker, op_compat) "
        "and rewrites _legacy_C_ops callers once a PHI kernel is live; REPLACE_THEN_DELETE "
        "switches append_op callers to the new-comm op",
    )
    ap.add_argument("--write", action="store_true", help="edit the tree instead of printing a diff")
    ap.add_argument("--out", help="write the diff to this file instead of stdout")

    s = sub.add_parser("verify", help="dangling references, CMake sources, yaml, g++ syntax check")
    s.add_argument("--paddle-src", required=True)
    s.add_argument("--no-compile", action="store_true", help="skip the g++ -fsyntax-only check")
    s.add_argument(
        "--baseline",
        help="the untouched tree to compare with (default: the checkout's git HEAD); "
        "only problems the edits introduced are reported",
    )
    s.add_argument(
        "--include",
        action="append",
        default=[],
        help="extra include folder for compiling edited files, e.g. a build folder (repeatable)",
    )
    s.add_argument("--out", help="report JSON")
    s.set_defaults(fn=cmd_verify)

    s = sub.add_parser(
        "audit-wheel", help="census of the list's ops in the installed Paddle binary"
    )
    s.add_argument("--list", default="all", help=lst)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_audit_wheel)

    s = sub.add_parser("audit-diff", help="per-op outcome between two censuses")
    s.add_argument("before")
    s.add_argument("after")
    s.add_argument("--out", help="diff JSON (and a .md next to it)")
    s.set_defaults(fn=cmd_audit_diff)
    for name in ("lists", "scan", "plan", "apply", "verify", "audit-wheel", "audit-diff"):
        sub.choices[name].formatter_class = _ShowDefaults
    for name in ("scan", "plan", "apply", "verify", "audit-wheel", "audit-diff"):
        sub.choices[name].add_argument(
            "--overwrite",
            action="store_true",
            help="replace existing output files (without it they are refused)",
        )

    from .upgrade.command import add_parser as add_upgrade_program

    add_upgrade_program(sub)
    return p


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 1 ``verify`` found problems, 2 bad input / unwritable output (one
    ``error: <file>: <problem>`` line), 130 interrupted."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
