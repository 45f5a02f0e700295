"""Upstream's static (inference) pretrained models, covered: every entry of
``paddlespeech/resource/pretrained_models.py``'s ``*_static_pretrained_models`` tables, the
example config it comes from, and whether that config exports and verifies here.

    python benchmarks/upstream_static.py [--conf-dir CONF_DIR] [--readme README.md]

The table is read from the installed PaddleSpeech (its file, not a copy). An entry's recipe
is found by a general rule on its name ``<family>_<dataset>-<lang>``: the family gives the
registry model and the recipe folder (fastspeech2 -> tts3, speedyspeech -> tts2, pwgan ->
voc1, mb_melgan -> voc3, hifigan -> voc5, deepspeech2offline / online -> asr0, panns ->
esc50/cls0), the dataset gives the examples folder. Results come from the zoo run
(benchmarks/results/zoo.jsonl); configs the zoo did not export with this model (PANNs CNN6 /
CNN10 share the esc50 recipe of CNN14) are exported and verified by this script. Writes
results/upstream_static.local.json (with --record: the committed results/upstream_static.json).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _results  # noqa: E402

HERE = Path(__file__).parent
FAMILIES = {  # name prefix -> (registry model, recipe folder, config file)
    "fastspeech2": ("fastspeech2", "tts3", "default.yaml"),
    "speedyspeech": ("speedyspeech", "tts2", "default.yaml"),
    "pwgan": ("pwgan", "voc1", "default.yaml"),
    "mb_melgan": ("mb_melgan", "voc3", "default.yaml"),
    "hifigan": ("hifigan", "voc5", "default.yaml"),
    "deepspeech2offline": ("deepspeech2", "asr0", "deepspeech2.yaml"),
    "deepspeech2online": ("deepspeech2_online", "asr0", "deepspeech2_online.yaml"),
    "panns": (None, "cls0", "panns.yaml"),
}
DATASETS = {"mix": "zh_en_tts", "panns": "esc50"}  # dataset names that differ from folders


def upstream_entries() -> list[dict]:
    import paddlespeech

    path = Path(paddlespeech.__file__).parent / "resource" / "pretrained_models.py"
    spec = importlib.util.spec_from_file_location("_pretrained_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # plain dicts; the package import is circular
    rows = []
    for table in sorted(n for n in vars(module) if n.endswith("_static_pretrained_models")):
        for name, versions in getattr(module, table).items():
            for ver, entry in versions.items():
                rows.append(
                    {
                        "table": table,
                        "name": name,
                        "version": ver,
                        "archive": entry.get("url", "").rsplit("/", 1)[-1],
                    }
                )
    return rows


def recipe_of(name: str) -> tuple[str | None, str | None, str]:
    """(registry model, config path below the examples folder, why not) of an entry name."""
    stem = name.split("-")[0]  # fastspeech2_csmsc-zh -> fastspeech2_csmsc
    if stem.startswith("panns_cnn"):
        backbone = stem.split("_")[1]
        return f"panns_{backbone}", f"esc50/cls0/conf/{FAMILIES['panns'][2]}", ""
    family, _, dataset = stem.rpartition("_")
    if family not in FAMILIES:
        return None, None, f"family {family!r} has no rule"
    model, recipe, file = FAMILIES[family]
    folder = DATASETS.get(dataset, dataset)
    return model, f"{folder}/{recipe}/conf/{file}", ""


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--conf-dir", default=os.environ.get("SPEECH_PIR_EXPORT_CONF_DIR"))
    ap.add_argument("--readme", default=None)
    ap.add_argument("--zoo", default=str(HERE / "results" / "zoo.jsonl"))
    _results.add_arguments(ap)
    args = ap.parse_args(argv)
    if not args.conf_dir:
        ap.error(
            "give --conf-dir (PaddleSpeech's examples folder) or set SPEECH_PIR_EXPORT_CONF_DIR"
        )
    conf_dir = Path(args.conf_dir)
    zoo = {}
    for line in Path(args.zoo).read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        zoo[(r["config"], r["model"])] = r
    rows, own = [], {}
    for entry in upstream_entries():
        model, config, why = recipe_of(entry["name"])
        row = dict(entry, model=model, config=config, status="", detail=why)
        if config is None:
            row["status"] = "no rule"
        elif not (conf_dir / config).is_file():
            row["status"] = "no example config"
            row["detail"] = f"PaddleSpeech's examples have no {config}"
        elif (config, model) in zoo and zoo[(config, model)].get("verify"):
            z = zoo[(config, model)]
            row["status"] = "exported + verified"
            row["detail"] = f"zoo: max abs {z['max_abs']:.1e}"
        else:
            if (config, model) not in own:
                own[(config, model)] = _export(model, conf_dir / config)
            row["status"], row["detail"] = own[(config, model)]
        rows.append(row)
    Path(_results.output_path("upstream_static", args)).write_text(
        json.dumps(rows, indent=1) + "\n", encoding="utf-8"
    )
    text = table(rows)
    print(text)
    if args.readme:
        readme = Path(args.readme)
        content = readme.read_text(encoding="utf-8")
        head, rest = content.split("<!-- static:start -->", 1)
        tail = rest.split("<!-- static:end -->", 1)[1]
        readme.write_text(
            f"{head}<!-- static:start -->\n{text}\n<!-- static:end -->{tail}", encoding="utf-8"
        )
    return 0


def _export(model, config) -> tuple[str, str]:
    import speech_pir_export as spe

    with tempfile.TemporaryDirectory() as td:
        try:
            m = spe.export(model, config, Path(td) / "out", onednn_check=False, progress=False)
        except Exception as exc:  # reported in the table
            return "export failed", f"{type(exc).__name__}: {str(exc)[:120]}"
    off = m["verification"]["onednn_off"]
    ok = m["predictor"]["verified"]
    worst = max(r.get("max_abs") or 0.0 for r in off.values())
    return ("exported + verified" if ok else "verify FAILED"), f"this script: max abs {worst:.1e}"


def table(rows) -> str:
    n = len(rows)
    done = sum(r["status"] == "exported + verified" for r in rows)
    lines = [
        f"{n} static entries (name, version) in PaddleSpeech 1.5.0's pretrained_models.py: "
        f"{done} have an example config and are exported and verified here; the others "
        "have no config in the examples.",
        "",
        "| table | name | version | upstream archive | model | example config | status | detail |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['table'].replace('_pretrained_models', '')} | {r['name']} | "
            f"{r['version']} | {r['archive']} | {r['model'] or '-'} | "
            f"{r['config'] or '-'} | {r['status']} | {r['detail']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
