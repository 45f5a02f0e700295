"""Export a PaddleSpeech model to PIR (``<graph>.json`` + ``<graph>.pdiparams``) with an
``export.json`` manifest, verify it against dygraph on the Paddle Inference predictor, run it.

Layout of an export folder::

    model.json, model.pdiparams     one pair per exported graph (several for U2 / streaming)
    export.json                      manifest: model, task, graphs with input specs, sample
                                     rate, vocabulary, statistics, verification, predictor
    config.yaml                      the config it was built from
    dygraph.pdparams                 the dygraph weights (what `verify` rebuilds from)
    stats.npy                        feature statistics (mu, sigma), when the model has any
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import yaml

from . import _predictor, registry
from ._atomic import atomic_dir, prepare_output, write_text
from ._errors import UserError, read_json_object, read_text
from ._predictor import Settings
from .errors import ConfigError, ExportError
from .registry import Context

TOLERANCE = 1e-4
MANIFEST = "export.json"


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


class _TolerantLoader(yaml.SafeLoader):
    """SafeLoader that reads HyperPyYAML tags (``!ref``, ``!new:``...) as plain values."""


def _untagged(loader, tag_suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_TolerantLoader.add_multi_constructor("!", _untagged)


def yaml_load(text: str):
    return yaml.load(text, Loader=_TolerantLoader)  # noqa: S506 - safe loader subclass


def _read_text(path, what) -> str:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} not found", path)
    try:
        return read_text(path, what)
    except UserError as exc:
        raise ConfigError(exc.problem, path) from exc


def load_config(path) -> dict:
    text = _read_text(path, "config file")
    try:
        cfg = yaml_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1} column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"not valid YAML: {problem}{at}", path) from exc
    if not isinstance(cfg, dict):
        raise ConfigError("expected a mapping at the top level", path)
    return cfg


def load_stats(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("statistics file not found", path)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ConfigError(f"not a .npy file: {exc}", path) from exc
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[0] != 2:
        raise ConfigError(
            "statistics must have shape (2, dim) (mean, std), got "
            f"{getattr(arr, 'shape', type(arr).__name__)}",
            path,
        )
    if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
        raise ConfigError("statistics must be finite floating-point numbers", path)
    if np.any(arr[1] <= 0):
        raise ConfigError("statistics: every standard deviation (row 2) must be > 0", path)
    return {"mu": arr[0], "sigma": arr[1]}


def load_list(path, what="vocabulary file") -> list[str] | None:
    """First column of each non-empty line (PaddleSpeech's ``phone_id_map.txt`` /
    ``vocab.txt`` layouts: ``symbol [id]``). When ids are given they must be 0..N-1 in
    order, since they are the model's embedding rows."""
    if path is None:
        return None
    text = _read_text(path, what)
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if not rows:
        raise ConfigError(f"{what} is empty", path)
    for i, row in enumerate(rows):
        if len(row) > 1 and row[1].lstrip("-").isdigit() and int(row[1]) != i:
            raise ConfigError(
                f"{what}: line {i + 1} gives id {row[1]} for {row[0]!r}, "
                f"expected {i} (ids must count up from 0)",
                path,
            )
    symbols = [row[0] for row in rows]
    seen = set()
    for i, sym in enumerate(symbols):
        if sym in seen:
            raise ConfigError(f"{what}: {sym!r} appears twice (line {i + 1})", path)
        seen.add(sym)
    return symbols


def _load_checkpoint(spec, path, model):
    import paddle

    path = Path(path)
    if not path.is_file():
        raise ConfigError("checkpoint not found", path)
    try:
        state = paddle.load(str(path))
    except Exception as exc:
        raise ConfigError(f"cannot be read as a Paddle checkpoint: {_summary(exc)}", path) from exc
    if not isinstance(state, dict):
        raise ConfigError(
            f"a checkpoint holds a dict of parameters, found {type(state).__name__}", path
        )
    if spec.checkpoint_key and spec.checkpoint_key in state:
        state = state[spec.checkpoint_key]
    elif isinstance(state, dict) and "main_params" in state:
        state = state["main_params"]
    own = model.state_dict()
    tables = [k for k in state if "spk_embedding_table" in k and k not in own]
    if tables:
        rows = list(state[tables[0]].shape)[0]
        raise ConfigError(
            f"{path}: the checkpoint has a speaker table ({rows} speakers) that "
            "the model built without a speaker map lacks: pass --speaker-dict "
            "(speaker_id_map.txt) so that spk_id is an input"
        )
    missing = [k for k in own if k not in state]
    mismatched = [
        f"{k}: checkpoint {list(state[k].shape)} vs model {list(own[k].shape)}"
        for k in own
        if k in state and list(state[k].shape) != list(own[k].shape)
    ]
    if mismatched:
        raise ConfigError(
            f"{path}: {len(mismatched)} parameter shapes do not match the model "
            "built from the config: " + "; ".join(mismatched[:5])
        )
    if missing:
        raise ConfigError(
            f"{path}: {len(missing)} parameters of the model are missing from "
            "the checkpoint (wrong model or config?): " + ", ".join(missing[:5])
        )
    model.set_state_dict(state)


# --------------------------------------------------------------------------------------------
# build / export
# --------------------------------------------------------------------------------------------


def build(
    model_name,
    cfg,
    *,
    checkpoint=None,
    stats=None,
    vocab=None,
    tones=None,
    speakers=None,
    preprocess=None,
    cmvn=None,
    labels=None,
    seed=0,
):
    """Build the dygraph model of a registry entry, load weights, fold weight norm, eval()."""
    import paddle

    spec = registry.get(model_name)
    if checkpoint is not None and spec.needs_stats and stats is None:
        raise ConfigError(
            f"{model_name} normalises its features: a trained checkpoint needs "
            "its statistics file (--stats stats.npy, shape (2, n_mels))"
        )
    paddle.seed(seed)
    ctx = Context(
        random_init=checkpoint is None,
        stats=stats,
        vocab=vocab,
        tones=tones,
        speakers=speakers,
        preprocess=preprocess,
        cmvn=cmvn,
        labels=labels,
    )
    try:
        built = spec.build(cfg, ctx)
    except (ConfigError, KeyError) as exc:
        raise ConfigError(f"config does not describe a {model_name} model: {exc}") from exc
    except TypeError as exc:
        raise ConfigError(f"config does not describe a {model_name} model: {exc}") from exc
    if checkpoint is not None:
        _load_checkpoint(spec, checkpoint, built.model)
    built.meta["weight_norm_removed"] = registry._remove_weight_norm(built.model)
    built.model.eval()
    for graph in built.graphs:
        graph.layer.eval()
    return spec, built


def recipe_file(config, value) -> Path | None:
    """A path of a recipe config (``conf/preprocess.yaml``, ``data/mean_std.json``): relative
    to the recipe folder, the one holding ``conf/`` (PaddleSpeech runs from there)."""
    if value in (None, "", "None", "null"):
        return None
    p = Path(str(value))
    if p.is_absolute():
        return p if p.is_file() else None
    here = Path(config).resolve().parent
    for base in (here, *here.parents[:3]):
        if (base / p).is_file():
            return base / p
    return None


def _recipe_front_end(cfg, config, preprocess, cmvn):
    """(preprocess dict, CMVN stats dict) of an ASR recipe: explicit files win, else the
    config's own ``preprocess_config`` / ``cmvn_path`` / ``cmvn_file`` when they exist."""
    pre_path = Path(preprocess) if preprocess else recipe_file(config, cfg.get("preprocess_config"))
    pre = None
    if pre_path is not None:
        pre = load_config(pre_path)
    if cmvn is None and pre is not None:
        for step in pre.get("process") or []:
            if isinstance(step, dict) and step.get("type") == "cmvn_json":
                cmvn = recipe_file(config, step.get("cmvn_path"))
    if cmvn is None:
        cmvn = recipe_file(config, cfg.get("cmvn_file"))
    stats = None
    if cmvn is not None:
        stats = read_json_object(cmvn, "CMVN statistics") if Path(cmvn).exists() else None
        if stats is None:
            raise ConfigError("CMVN statistics file not found", cmvn)
    return pre, stats


def export(
    model_name,
    config,
    out,
    *,
    checkpoint=None,
    stats=None,
    phones_dict=None,
    tones_dict=None,
    speaker_dict=None,
    preprocess=None,
    cmvn=None,
    labels=None,
    verify_after=True,
    onednn_check=True,
    overwrite=False,
    progress=True,
) -> dict:
    """Export ``model_name`` built from ``config`` into the folder ``out`` (atomic).

    ASR / ST: the recipe's front end (``preprocess`` config, ``cmvn`` statistics; by default
    the files the config names, relative to its recipe folder) is recorded in the export
    and applied by ``infer``."""
    import paddle

    out = prepare_output(out, overwrite=overwrite)  # refuse before any work
    cfg = load_config(config)
    stats_d = load_stats(stats) if stats is not None else None
    vocab, tones, speakers = (
        load_list(phones_dict),
        load_list(tones_dict, "tone map"),
        load_list(speaker_dict, "speaker map"),
    )
    spec = registry.get(model_name)
    pre, cmvn_d = (None, None)
    if spec.task in ("asr", "st"):
        try:
            pre, cmvn_d = _recipe_front_end(cfg, config, preprocess, cmvn)
        except UserError as exc:
            raise ConfigError(exc.problem, exc.path) from exc
    label_list = None
    if spec.text_to_text is not None:  # a text model: its class labels (the recipe's punc_vocab)
        label_file = labels or recipe_file(config, (cfg.get("data_params") or {}).get("punc_path"))
        label_list = load_list(label_file, "label file") if label_file else None
    spec, built = build(
        model_name,
        cfg,
        checkpoint=checkpoint,
        stats=stats_d,
        vocab=vocab,
        tones=tones,
        speakers=speakers,
        preprocess=pre,
        cmvn=cmvn_d,
        labels=label_list,
    )
    with atomic_dir(out, overwrite=overwrite) as tmp:
        timings = {}
        graphs = []
        for graph in _progress(built.graphs, progress, f"export {model_name}"):
            t0 = time.perf_counter()
            static = paddle.jit.to_static(
                graph.layer, input_spec=[i.spec() for i in graph.inputs], full_graph=True
            )
            kwargs = {"skip_prune_program": True} if graph.skip_prune else {}
            try:
                paddle.jit.save(static, str(tmp / graph.name), **kwargs)
            except OSError:
                raise  # a full or read-only disk: the command line names it
            except Exception as exc:
                raise ExportError(
                    f"{model_name}: exporting graph {graph.name!r} failed: "
                    f"{type(exc).__name__}: {_summary(exc)}"
                ) from exc
            timings[graph.name] = round(time.perf_counter() - t0, 3)
            graphs.append(
                {
                    "name": graph.name,
                    "inputs": [i.describe() for i in graph.inputs],
                    "outputs": graph.outputs,
                    "skip_prune": graph.skip_prune,
                }
            )
        paddle.save(built.model.state_dict(), str(tmp / "dygraph.pdparams"))
        shutil.copyfile(config, tmp / "config.yaml")
        if stats_d is not None:
            np.save(tmp / "stats.npy", np.stack([stats_d["mu"], stats_d["sigma"]]))
        manifest = {
            "format": "speech-pir-export/1",
            "model": model_name,
            "family": spec.family,
            "task": spec.task,
            "random_init": checkpoint is None,
            "paddle": paddle.__version__,
            "graphs": graphs,
            "meta": _jsonable(built.meta),
            "stats": "stats.npy" if stats_d is not None else None,
            "export_seconds": timings,
            "notes": spec.notes,
            "predictor": {"onednn": False, "threads": 1, "verified": False},
        }
        _write_manifest(tmp, manifest)
        if verify_after:
            result = verify(tmp, onednn_check=onednn_check, progress=progress)
            manifest = result["manifest"]
    return manifest


def _summary(exc) -> str:
    """First and last meaningful lines of a (often very long) Paddle error."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("File ", "^", "[Hint"))] or lines
    if not lines:
        return ""
    text = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    return text[:500]


def _rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


def _jsonable(obj):
    return json.loads(
        json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    )


def _write_manifest(folder: Path, manifest: dict):
    write_text(
        Path(folder) / MANIFEST,
        json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
        overwrite=True,
    )


def read_manifest(folder) -> dict:
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(
            "export folder not found"
            if not folder.exists()
            else "is not a folder (an export folder was expected)",
            folder,
        )
    path = folder / MANIFEST
    if not path.is_file():
        raise ExportError(f"not found; is {folder} an export folder of speech-pir-export?", path)
    try:
        manifest = read_json_object(path, "export manifest")
    except UserError as exc:
        raise ExportError(exc.problem, path) from exc
    for key, kind in (("model", str), ("task", str), ("graphs", list)):
        if not isinstance(manifest.get(key), kind):
            raise ExportError(f"export manifest has no valid {key!r} entry (damaged?)", path)
    for graph in manifest["graphs"]:
        name = graph.get("name") if isinstance(graph, dict) else None
        if (
            not isinstance(name, str)
            or not (folder / f"{name}.json").is_file()
            or not (folder / f"{name}.pdiparams").is_file()
        ):
            raise ExportError(
                f"graph {name!r} of the manifest is missing its .json / .pdiparams files", folder
            )
    return manifest


def _progress(items, enabled, desc):
    if not enabled or len(items) < 2:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, leave=False)


# --------------------------------------------------------------------------------------------
# predictor
# --------------------------------------------------------------------------------------------


def create_predictor(folder, graph="model", *, onednn=False, threads=1, deleted_passes=()):
    return _predictor.create_predictor(
        Path(folder) / graph, Settings(onednn, list(deleted_passes), threads)
    )


def run_predictor(predictor, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return _predictor.run_predictor(predictor, list(inputs))


def sample_inputs(graph: dict, built_graph) -> list[np.ndarray]:
    rng = np.random.default_rng(1234)
    return [inp.sample(rng) for inp in built_graph.inputs]


def compare(reference: list[np.ndarray], got: list[np.ndarray]) -> dict:
    return _predictor.compare(reference, got, TOLERANCE)


def verification_cases(built_graph, seed: int = 1234) -> list[tuple[list, list]]:
    """``[(feeds, dygraph outputs)]`` that verification checks, in order, on one predictor:
    the graph's run-time shape classes (``Graph.cases``) or its one sample."""
    rng = np.random.default_rng(seed)
    if built_graph.cases is not None:
        feeds = built_graph.cases(built_graph.layer, rng)
    else:
        feeds = [[inp.sample(rng) for inp in built_graph.inputs]]
    return [(f, _dygraph_outputs(built_graph.layer, f)) for f in feeds]


def _check_cases_in_process(prefix, settings: Settings, cases) -> dict:
    """Every case on one predictor in this process; the first failing case is named."""
    results = []
    try:
        pred = _predictor.create_predictor(prefix, settings)
    except Exception as exc:
        return {"ok": False, "reason": _predictor._error_line(exc)}
    for feeds, ref in cases:
        try:
            results.append(compare(ref, run_predictor(pred, feeds)))
        except Exception as exc:
            results.append({"ok": False, "reason": _predictor._error_line(exc)})
    bad = [i for i, r in enumerate(results) if not r["ok"]]
    out = {
        "ok": not bad,
        "max_abs": max(r.get("max_abs", 0.0) for r in results),
        "max_rel": max(r.get("max_rel", 0.0) for r in results),
    }
    if bad:
        out["failed_case"] = bad[0]
        if "reason" in results[bad[0]]:
            out["reason"] = results[bad[0]]["reason"]
    if len(results) > 1:
        out["cases"] = results
    return out


def rebuild(folder):
    """The dygraph model of an export folder (config + dygraph.pdparams)."""
    import paddle

    folder = Path(folder)
    manifest = read_manifest(folder)
    cfg = load_config(folder / "config.yaml")
    stats = load_stats(folder / "stats.npy") if manifest.get("stats") else None
    meta = manifest.get("meta", {})
    front = meta.get("frontend") or {}
    spec, built = build(
        manifest["model"],
        cfg,
        stats=stats,
        vocab=meta.get("vocab"),
        tones=meta.get("tones"),
        speakers=meta.get("speakers"),
        preprocess=front.get("preprocess"),
        cmvn=front.get("cmvn_stats"),
        labels=meta.get("punc_list"),
    )
    built.model.set_state_dict(paddle.load(str(folder / "dygraph.pdparams")))
    built.model.eval()
    return manifest, built


def _dygraph_outputs(layer, inputs):
    import paddle

    with paddle.no_grad():
        out = layer(*[paddle.to_tensor(x) for x in inputs])
    if not isinstance(out, (list, tuple)):
        out = [out]
    return [o.numpy() if hasattr(o, "numpy") else np.asarray(o) for o in out]


SPEED_MARGIN = 0.05  # oneDNN replaces the plain predictor only when > 5 % faster


def verify(folder, *, onednn_check=True, threads=1, progress=True, choose_by_speed=True) -> dict:
    """Compare dygraph and the predictor, oneDNN off (in process) and on (in a worker
    process, since oneDNN defects of Paddle 3.3.1 can kill or hang it), on every input shape
    class the run time feeds the graph (``Graph.cases``: a streaming encoder's first chunk
    with empty caches, later chunks, a short last chunk), in order on one predictor. A graph
    that matches with oneDNN off but not on gets its oneDNN configuration repaired: the
    passes whose deletion makes it match on every case are found by bisection and verified.
    With ``choose_by_speed``, the verified configurations (plain, oneDNN as repaired) are
    timed on the same cases in one process and the faster is used (oneDNN only when more
    than ``SPEED_MARGIN`` faster). Updates export.json with the per-graph predictor settings
    to use and the evidence."""
    folder = Path(folder)
    manifest, built = rebuild(folder)
    by_name = {g.name: g for g in built.graphs}
    results = {"onednn_off": {}, "onednn_on": {}, "onednn_repair": {}, "speed": {}}
    settings = {}
    timeout = float(os.environ.get("SPEECH_PIR_EXPORT_PREDICT_TIMEOUT", "120"))
    worker = _predictor.Worker(timeout) if onednn_check else None
    try:
        for graph in _progress(manifest["graphs"], progress, "verify"):
            name = graph["name"]
            bg = by_name[name]
            cases = verification_cases(bg)
            t0 = time.perf_counter()
            res = _check_cases_in_process(folder / name, Settings(False, [], threads), cases)
            res["seconds"] = round(time.perf_counter() - t0, 3)
            results["onednn_off"][name] = res
            settings[name] = Settings(False, [], threads)
            if worker is None:
                continue
            repair = _predictor.repair_onednn(
                folder / name, cases=cases, tolerance=TOLERANCE, threads=threads, worker=worker
            )
            results["onednn_on"][name] = repair["plain"]
            if repair["deleted_passes"] or not repair["ok"]:
                results["onednn_repair"][name] = {
                    k: repair.get(k)
                    for k in ("ok", "deleted_passes", "checks", "reason", "verified")
                    if repair.get(k) is not None
                }
            if repair["ok"] or not res["ok"]:
                settings[name] = Settings.from_dict(repair["settings"])
            if choose_by_speed and repair["ok"] and res["ok"]:
                results["speed"][name] = _faster(folder / name, settings[name], cases, worker)
                settings[name] = Settings.from_dict(results["speed"][name]["settings"])
    finally:
        if worker is not None:
            worker.__exit__(None, None, None)
    ok_off = all(r["ok"] for r in results["onednn_off"].values())
    ok_on = onednn_check and all(s.onednn for s in settings.values())
    verified = all(results["onednn_off"][g]["ok"] or settings[g].onednn for g in settings)
    manifest["verification"] = {
        "tolerance": f"max|dygraph-predictor| <= {TOLERANCE} * max(1, max|dygraph|)",
        **results,
    }
    manifest["predictor"] = {
        "onednn": bool(ok_on),
        "threads": threads,
        "verified": bool(verified),
        "onednn_checked": onednn_check,
        "graphs": {g: s.to_dict() for g, s in settings.items()},
    }
    _write_manifest(folder, manifest)
    return {
        "ok": bool(verified),
        "ok_onednn_off": ok_off,
        "ok_onednn_on": ok_on,
        "manifest": manifest,
        "results": results,
    }


def _faster(prefix, onednn: Settings, cases, worker) -> dict:
    """Time the two verified configurations of a graph on its cases in one process (median
    of 7 interleaved passes after a warm-up) and keep the faster."""
    plain = Settings(False, [], onednn.threads)
    load = round(os.getloadavg()[0], 2)
    timed = worker.time(prefix, [plain, onednn], cases, repeats=7, warmup=1)
    if not timed.get("ok"):
        return {"settings": plain.to_dict(), "chosen": "plain", "reason": timed.get("reason")}
    t_plain, t_onednn = timed["medians"]
    chosen = onednn if t_onednn < t_plain * (1 - SPEED_MARGIN) else plain
    return {
        "settings": chosen.to_dict(),
        "chosen": chosen.label,
        "onednn": onednn.to_dict(),
        "plain_ms": round(t_plain * 1e3, 3),
        "onednn_ms": round(t_onednn * 1e3, 3),
        "onednn_speedup": round(t_plain / t_onednn, 3),
        "load": load,
    }


# --------------------------------------------------------------------------------------------
# inference with verified settings
# --------------------------------------------------------------------------------------------


class ExportedModel:
    """An export folder run through the Paddle Inference predictor with the settings that
    verification proved correct (oneDNN only if it matched dygraph)."""

    def __init__(self, folder, *, threads=1, allow_unverified=False):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        pred = self.manifest.get("predictor", {})
        if not pred.get("verified") and not allow_unverified:
            raise ExportError(
                f"{self.folder}: export is not verified (run `speech-pir-export "
                "verify`), or verification failed; refusing to run"
            )
        self.onednn = bool(pred.get("onednn"))
        self.threads = threads
        per_graph = pred.get("graphs") or {}
        self.settings = {
            g["name"]: Settings.from_dict(per_graph.get(g["name"]) or {"onednn": self.onednn})
            for g in self.manifest["graphs"]
        }
        for s in self.settings.values():
            s.threads = threads
        self._predictors = {}
        stats = self.folder / "stats.npy"
        self.stats = np.load(stats) if stats.exists() else None

    @property
    def meta(self) -> dict:
        return self.manifest.get("meta", {})

    def run(self, *inputs, graph="model") -> list[np.ndarray]:
        if graph not in self._predictors:
            if graph not in self.settings:
                raise ExportError(f"no graph {graph!r} in this export", self.folder)
            self._predictors[graph] = _predictor.create_predictor(
                self.folder / graph, self.settings[graph]
            )
        return run_predictor(self._predictors[graph], list(inputs))


class DygraphModel:
    """The same graphs as an export folder, run in dygraph (rebuilt from config.yaml +
    dygraph.pdparams); ``run`` has ExportedModel's signature, so the Python drivers of
    restructured models (Tacotron2, WaveRNN, DiffSinger, U2 decoding) run on either and
    their results can be compared."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.manifest, self.built = rebuild(self.folder)
        self._layers = {g.name: g.layer for g in self.built.graphs}

    @property
    def meta(self) -> dict:
        return self.manifest.get("meta", {})

    def run(self, *inputs, graph="model") -> list[np.ndarray]:
        return _dygraph_outputs(self._layers[graph], inputs)
