"""Zoo run: every model config of PaddleSpeech's examples -> build with random weights ->
forward -> export -> verify. Each config runs in its own process (crash and memory
isolation); results go to a JSON-lines file and a table in the README.

    python -m speech_pir_export.zoo [CONF_DIR] [--readme README.md] [--only PAT]

CONF_DIR is PaddleSpeech's ``examples`` folder (or a copy of its conf yaml files); without
it, the environment variable SPEECH_PIR_EXPORT_CONF_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .registry.build_only import BUILD_ONLY
from .registry.build_only import REASON as BUILD_ONLY_REASON

CONF_DIR_ENV = "SPEECH_PIR_EXPORT_CONF_DIR"
NOT_MODEL = ("preprocess.yaml", "/decode/", "tuning/", "/lm/")


def model_configs(conf_dir: Path) -> list[Path]:
    out = []
    for p in sorted(conf_dir.rglob("*.yaml")):
        rel = p.relative_to(conf_dir).as_posix()
        if any(tag in rel for tag in NOT_MODEL):
            continue
        out.append(p)
    return out


def _classify(cfg, path=None) -> tuple[str | None, str]:
    from .registry.build_only import classify

    return classify(cfg, path)


def _resolve(path: Path) -> Path:
    """Some example configs are git symlinks stored as text (`../../tts3/conf/default.yaml`)."""
    text = path.read_text(encoding="utf-8").strip()
    if text.endswith(".yaml") and "\n" not in text and (path.parent / text).is_file():
        return (path.parent / text).resolve()
    return path


def run_one(path: Path, out_dir: Path) -> dict:
    import speech_pir_export as spe
    from speech_pir_export import exporter

    row = {
        "config": str(path),
        "model": None,
        "class": None,
        "builds": False,
        "forward": False,
        "exportable": False,
        "export": False,
        "verify": None,
        "max_abs": None,
        "onednn": None,
        "seconds": None,
        "reason": "",
    }
    t0 = time.perf_counter()
    path = _resolve(path)
    cfg = exporter.yaml_load(path.read_text(encoding="utf-8"))
    name, kind = _classify(cfg)
    row["model"] = name
    if name is None:
        row["reason"] = "no builder for this family yet"
        return row
    if kind == "registry":
        spec = spe.MODELS[name]
        row["class"] = spec.family
        row["exportable"] = True
        try:
            _, built = exporter.build(name, cfg)
            row["builds"] = True
            del built
            m = spe.export(name, path, out_dir / name, overwrite=True, progress=False)
            row["export"] = True
            ver = m["verification"]
            off = ver["onednn_off"]
            row["forward"] = True  # verify ran the rebuilt dygraph model on sample inputs
            row["verify"] = bool(m["predictor"]["verified"])
            row["max_abs"] = max((r.get("max_abs") or 0.0) for r in off.values())
            row["max_rel"] = max((r.get("max_rel") or 0.0) for r in off.values())
            on = ver.get("onednn_on", {})
            row["onednn"] = (
                "ok"
                if on and all(r.get("ok") for r in on.values())
                else (
                    "; ".join(
                        sorted(
                            {
                                (r.get("reason") or "mismatch")[:80]
                                for r in on.values()
                                if not r.get("ok")
                            }
                        )
                    )
                )
            )
            if not row["verify"]:
                row["reason"] = "; ".join(
                    str(r.get("reason") or r) for r in off.values() if not r.get("ok")
                )[:200]
            row["export_seconds"] = sum(m["export_seconds"].values())
        except Exception as exc:
            row["reason"] = f"{type(exc).__name__}: {exporter._summary(exc)}"[:300]
            if row["builds"] and not row["export"]:
                row["forward"] = _forward_only(name, cfg)
    else:
        row["reason"] = BUILD_ONLY_REASON
        try:
            row["class"], row["forward"], _ = BUILD_ONLY[name].forward(cfg)
            row["builds"] = True
        except Exception as exc:
            row["reason"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def run_build(path: Path) -> dict:
    """Phase 1 (fast, in process): build with random weights and run one dygraph forward."""
    from speech_pir_export import exporter

    row = {
        "config": str(path),
        "model": None,
        "class": None,
        "builds": False,
        "forward": False,
        "exportable": False,
        "reason": "",
    }
    t0 = time.perf_counter()
    try:
        cfg = exporter.yaml_load(_resolve(path).read_text(encoding="utf-8"))
        name, kind = _classify(cfg, path)
        row["model"] = name
        if name is None:
            row["reason"] = _unknown_reason(cfg)
        elif kind == "registry":
            import speech_pir_export as spe

            row["class"] = spe.MODELS[name].family
            row["exportable"] = True
            _, built = exporter.build(name, cfg)
            row["builds"] = True
            row["forward"] = _forward_built(built)
        else:
            row["reason"] = BUILD_ONLY_REASON
            row["class"], row["forward"], error = BUILD_ONLY[name].forward(cfg)
            row["builds"] = True
            if error:
                row["reason"] += "; " + error
    except Exception as exc:
        row["reason"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def _unknown_reason(cfg) -> str:
    if isinstance(cfg, dict) and "frozen_layers" in cfg and "model" not in cfg:
        return (
            "not a model config: fine-tuning overlay (frozen layers, learning rate) for a "
            "pretrained FastSpeech2 whose config ships with the checkpoint"
        )
    if isinstance(cfg, dict) and "output_neurons" in cfg and "model" not in cfg:
        return (
            "not a model config: speechbrain-style HyperPyYAML training parameters "
            "(data, tokenizer, optimiser) with no model section; the recipe's model is "
            "conf/wav2vec2ASR.yaml"
        )
    return "no builder for this family yet"


def _forward_built(built) -> bool:
    import numpy as np
    import paddle

    rng = np.random.default_rng(0)
    with paddle.no_grad():
        for g in built.graphs:
            g.layer(*[paddle.to_tensor(i.sample(rng)) for i in g.inputs])
    return True


def _forward_only(name, cfg) -> bool:
    import numpy as np
    import paddle

    from speech_pir_export import exporter

    try:
        _, built = exporter.build(name, cfg)
        g = built.graphs[0]
        rng = np.random.default_rng(0)
        with paddle.no_grad():
            g.layer(*[paddle.to_tensor(i.sample(rng)) for i in g.inputs])
        return True
    except Exception:
        return False


def write_table(rows: list[dict], readme: Path, conf_dir: Path):
    lines = [
        "| config | model | class | builds | forward | exportable | export | verify "
        "(max abs, oneDNN off) | oneDNN | reason |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ok = lambda v: "yes" if v else ("-" if v is None else "no")  # noqa: E731
    for r in rows:
        rel = _rel(r["config"], conf_dir)
        ver = (
            "n/a"
            if r["verify"] is None
            else (f"pass {r['max_abs']:.1e}" if r["verify"] else "FAIL")
        )
        lines.append(
            f"| {rel} | {r['model'] or '-'} | {r['class'] or '-'} | {ok(r['builds'])} "
            f"| {ok(r['forward'])} | {ok(r['exportable'])} | {ok(r['export'])} | {ver}"
            f" | {r['onednn'] or '-'} | {(r['reason'] or '').replace('|', '/')} |"
        )
    n = len(rows)
    built = sum(r["builds"] and r["forward"] for r in rows)
    exported = sum(bool(r["verify"]) for r in rows)
    families = sorted({r["model"] for r in rows if r.get("verify")})
    summary = (
        f"{n} model configs: {built} build and run forward; {exported} exported and "
        f"verified on the predictor (tolerance 1e-4 relative), covering "
        f"{len(families)} registry entries ({', '.join(families)}). oneDNN column: "
        "'ok' = the export also matched with oneDNN on, otherwise the oneDNN failure "
        "(the export is then verified and used with oneDNN off)."
    )
    block = "\n".join(["<!-- zoo:start -->", summary, "", *lines, "<!-- zoo:end -->"])
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    if "<!-- zoo:start -->" in text:
        head, rest = text.split("<!-- zoo:start -->", 1)
        tail = rest.split("<!-- zoo:end -->", 1)[1]
        text = head + block + tail
    else:
        text += "\n" + block + "\n"
    readme.write_text(text, encoding="utf-8")
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("conf_dir_pos", nargs="?", help="CONF_DIR (overrides --conf-dir)")
    ap.add_argument(
        "--conf-dir",
        default=os.environ.get(CONF_DIR_ENV),
        help=f"PaddleSpeech's examples folder (the config yaml files of "
        f"examples/*/*/conf); default: ${CONF_DIR_ENV}",
    )
    ap.add_argument("--results", default="benchmarks/results/zoo.jsonl")
    ap.add_argument("--readme", default=None)
    ap.add_argument("--only", default=None, help="substring filter on the config path")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--fresh", action="store_true", help="ignore earlier results")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument(
        "--phase",
        choices=["build", "export"],
        default=None,
        help="build: build + forward every config in one process (fast); "
        "export: export + verify each in its own process; default: both",
    )
    ap.add_argument("--build-results", default="benchmarks/results/zoo_build.jsonl")
    args = ap.parse_args(argv)
    if args.one:
        import warnings

        warnings.filterwarnings("ignore")
        with tempfile.TemporaryDirectory() as td:
            print("ZOO-ROW " + json.dumps(run_one(Path(args.one), Path(td))))
        return 0
    if not (args.conf_dir_pos or args.conf_dir):
        ap.error(
            f"no examples folder: give CONF_DIR (PaddleSpeech's examples/, or a copy of "
            f"its conf yaml files) or set {CONF_DIR_ENV}"
        )
    conf_dir = Path(args.conf_dir_pos or args.conf_dir)
    if not conf_dir.is_dir():
        ap.error(f"{conf_dir}: not a folder")
    if args.phase in (None, "build"):
        _phase_build(conf_dir, Path(args.build_results), args)
        if args.phase == "build":
            return 0
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if results.exists() and not args.fresh:
        for line in results.read_text().splitlines():
            r = json.loads(line)
            done[_rel(r["config"], conf_dir)] = r
    configs = [p for p in model_configs(conf_dir) if not args.only or args.only in str(p)]

    def exportable_first(p):
        from .exporter import yaml_load

        try:
            return (
                0
                if _classify(yaml_load(_resolve(p).read_text(encoding="utf-8")))[1] == "registry"
                else 1
            )
        except Exception:
            return 2

    order = sorted(configs, key=exportable_first)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = lambda x, **k: x  # noqa: E731
    env = dict(
        os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), GLOG_minloglevel="3"
    )
    for path in tqdm(order, desc="zoo"):
        if _rel(path, conf_dir) in done or exportable_first(path) != 0:
            continue  # done, or a build-only family (the build phase covers it)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "speech_pir_export.zoo", "--one", str(path)],
                capture_output=True,
                text=True,
                env=env,
                timeout=args.timeout,
            )
            rows = [ln[8:] for ln in proc.stdout.splitlines() if ln.startswith("ZOO-ROW ")]
            row = (
                json.loads(rows[-1])
                if rows
                else {
                    "config": str(path),
                    "model": None,
                    "class": None,
                    "builds": False,
                    "forward": False,
                    "exportable": False,
                    "export": False,
                    "verify": None,
                    "max_abs": None,
                    "onednn": None,
                    "seconds": None,
                    "reason": f"process died (rc {proc.returncode}): "
                    + " ".join(proc.stderr.strip().splitlines()[-1:])[:200],
                }
            )
        except subprocess.TimeoutExpired:
            row = {
                "config": str(path),
                "model": None,
                "class": None,
                "builds": False,
                "forward": False,
                "exportable": False,
                "export": False,
                "verify": None,
                "max_abs": None,
                "onednn": None,
                "seconds": args.timeout,
                "reason": f"timeout after {args.timeout} s",
            }
        row["config"] = _rel(path, conf_dir)  # results name configs relative to CONF_DIR
        done[row["config"]] = row
        with results.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
    if args.readme:
        print(
            write_table(
                merge(configs, Path(args.build_results), results, conf_dir),
                Path(args.readme),
                conf_dir,
            )
        )
    return 0


def _phase_build(conf_dir, out: Path, args):
    import warnings

    warnings.filterwarnings("ignore")
    out.parent.mkdir(parents=True, exist_ok=True)
    seen = set()
    if out.exists() and not args.fresh:
        seen = {_rel(json.loads(ln)["config"], conf_dir) for ln in out.read_text().splitlines()}
    for path in model_configs(conf_dir):
        if args.only and args.only not in str(path) or _rel(path, conf_dir) in seen:
            continue
        row = run_build(path)
        row["config"] = _rel(path, conf_dir)
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        import gc

        gc.collect()


def _rel(path, conf_dir) -> str:
    """A config named relative to CONF_DIR (results carry no path of one machine; older
    results with absolute paths are read the same way)."""
    text = str(path)
    marker = "paddlespeech-examples-conf/"
    if os.path.isabs(text) and marker in text and not text.startswith(str(conf_dir)):
        return text.split(marker, 1)[1]
    return os.path.relpath(text, conf_dir) if os.path.isabs(text) else text


def merge(configs, build_file: Path, export_file: Path, conf_dir=None) -> list[dict]:
    def load(p):
        rows = [json.loads(ln) for ln in p.read_text().splitlines()] if p.exists() else []
        return {_rel(r["config"], conf_dir): r for r in rows}

    builds, exports = load(build_file), load(export_file)
    rows = []
    for p in configs:
        b, e = builds.get(_rel(p, conf_dir)), exports.get(_rel(p, conf_dir))
        if b is not None and e is not None and not e.get("model"):
            e = None  # an export-phase row of a family it does not export: keep the build row
        if b is None and e is None:
            continue
        row = dict(b or e)
        if e is not None:
            row.update({k: e[k] for k in ("export", "verify", "max_abs", "onednn")})
            if e.get("model"):  # the export run's classification is the later one
                row["model"], row["class"] = e["model"], e.get("class") or row.get("class")
            if e.get("reason"):
                row["reason"] = e["reason"]
            row["builds"] = row["builds"] or e["builds"]
            row["forward"] = row["forward"] or e["forward"]
        else:
            row.update(
                {
                    "export": None if row.get("exportable") else False,
                    "verify": None,
                    "max_abs": None,
                    "onednn": None,
                }
            )
            if row.get("exportable") and not row.get("reason"):
                row["reason"] = "export not run yet (zoo export phase unfinished)"
        rows.append(row)
    return rows


if __name__ == "__main__":
    sys.exit(main())
