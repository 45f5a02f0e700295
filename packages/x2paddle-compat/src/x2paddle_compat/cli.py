"""``x2paddle3``: X2Paddle's command line on Paddle 3, with verification.

Accepts X2Paddle's arguments (``-f/--framework``, ``-m/--model``, ``-p/--prototxt``,
``-w/--weight``, ``-s/--save_dir``, ``-isd/--input_shape_dict`` ...), writes the Paddle 3
inference model (``inference_model/model.json`` + ``model.pdiparams``), the dygraph code
(``x2paddle_code.py`` + ``model.pdparams``) and, with ``--verify``, ``deploy.json``.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tempfile
from pathlib import Path

# Nothing heavy is imported here: --help, --version and argument errors answer without
# importing Paddle, X2Paddle or onnx.


EXIT_CODES = """exit status:
  0    converted (and, with --verify, every runtime matched the source model)
  1    verification failed: the converted model differs from the source model
  2    bad input or conversion failed (the message names the file and the problem)
  3    the source runtime failed or crashed on the verification inputs (no verdict)
  130  interrupted"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="x2paddle3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert ONNX, Caffe or TensorFlow models with X2Paddle 1.6 on Paddle 3 "
        "(runtime fixes applied) and verify the result against the source model.",
        epilog=EXIT_CODES + "\n\nPyTorch modules: use x2paddle_compat.convert_torch() "
        "from Python. Paddle's and X2Paddle's own messages are hidden unless "
        "--verbose; stdout carries only this tool's results.",
    )
    p.add_argument(
        "--framework", "-f", choices=["onnx", "caffe", "tensorflow"], help="source framework"
    )
    p.add_argument("--model", "-m", help="ONNX model or TensorFlow frozen graph (.pb)")
    p.add_argument("--prototxt", "-p", help="Caffe .prototxt")
    p.add_argument("--weight", "-w", help="Caffe .caffemodel")
    p.add_argument(
        "--save_dir",
        "-s",
        help="output folder (written atomically; an existing "
        "non-empty folder is refused unless --overwrite)",
    )
    p.add_argument(
        "--caffe_proto",
        "-c",
        default=None,
        help="optional caffe_pb2.py compiled from a custom caffe.proto",
    )
    p.add_argument(
        "--define_input_shape", "-d", action="store_true", help="TensorFlow: ask for input shapes"
    )
    p.add_argument(
        "--input_shape_dict",
        "-isd",
        default=None,
        help="ONNX input shapes, e.g. \"{'image': [1, 3, 224, 224]}\" (-1 = any): "
        "fixes them in the converted model and is used by --verify; "
        "default for verification: unknown batch 1, image sides 224, "
        "16 tokens, 16000 audio samples",
    )
    p.add_argument(
        "--input-value",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="ONNX: freeze an input to a constant, e.g. --input-value sr=16000 (repeatable); "
        "the converted model has no such input, and branches on it are resolved when the "
        "other shapes are known (-isd)",
    )
    p.add_argument(
        "--enable_onnx_checker",
        "-oc",
        default="True",
        help="run onnx.checker first (True/False; default True)",
    )
    p.add_argument(
        "--disable_feedback",
        "-df",
        default=True,
        help="accepted for compatibility; feedback is always disabled",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="run source model and converted model (dygraph, jit.load, predictor "
        "with and without oneDNN) on the same inputs; exit 1 above "
        "tolerance; write deploy.json",
    )
    p.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    p.add_argument(
        "--rtol",
        type=float,
        default=1e-5,
        help="tolerance relative to the output's largest magnitude (default 1e-5); "
        "four times the source runtime's own spread (optimized vs "
        "unoptimized run) is added",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the verification report as one JSON object on stdout",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing save_dir (only once the new output is complete)",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show Paddle's and X2Paddle's own log lines and progress",
    )
    p.add_argument("--list-fixes", action="store_true", help="list the runtime fixes and exit")
    p.add_argument(
        "--demo", action="store_true", help="convert and verify a small built-in ONNX model"
    )
    p.add_argument(
        "--version",
        "-v",
        action="store_true",
        help="print the versions of x2paddle-compat, x2paddle and paddle and exit",
    )
    return p


def _bool(text) -> bool:
    return str(text).lower() in ("1", "true", "yes", "y")


def _installed(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``x2paddle3``; returns the exit status (see ``--help``)."""
    from ._errors import run_cli

    return run_cli(_main_with_codes, argv)


def _main_with_codes(argv) -> int:
    import warnings

    from .errors import EXIT_SOURCE_RUNTIME, ConversionWarning, SourceRuntimeError

    show = warnings.showwarning

    def show_plainly(message, category, *args, **kwargs):
        # what a fix changed, as one line like the errors; other warnings as Python shows them
        if issubclass(category, ConversionWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            show(message, category, *args, **kwargs)

    warnings.showwarning = show_plainly
    try:
        return _main(argv)
    except SourceRuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SOURCE_RUNTIME
    finally:
        warnings.showwarning = show


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    if args.version:  # read from the installed metadata: nothing is imported
        from . import __version__

        paddle = _installed("paddlepaddle")
        if paddle == "not installed":
            paddle = _installed("paddlepaddle-gpu")
        print(
            f"x2paddle3 (x2paddle-compat) {__version__}, x2paddle {_installed('x2paddle')}, "
            f"paddle {paddle}"
        )
        return 0
    if not (args.list_fixes or args.demo) and (not args.framework or not args.save_dir):
        build_parser().error("--framework and --save_dir are required")
    from ._paddle import quiet_paddle
    from .convert import VERBOSE

    quiet_paddle(args.verbose)
    VERBOSE["on"] = args.verbose
    import x2paddle_compat as xc

    if args.list_fixes:
        for f in xc.describe():
            print(f"{f['root_cause']:<4} {f['id']:<28} {f['summary']}")
        return 0
    if args.demo:
        return _demo(args)
    return _convert_and_verify(args)


def _convert_and_verify(args) -> int:
    import numpy as np

    import x2paddle_compat as xc

    from . import sources
    from ._paddle import native_stdout_to_stderr
    from .verify import spread, verify

    def check(inputs, refs, source, spreads=None, **kw):
        print(
            "verifying the converted model (dygraph, jit, predictor with and without oneDNN) ...",
            file=sys.stderr,
        )
        with native_stdout_to_stderr(not args.verbose):
            report = verify(
                args.save_dir, inputs, refs, atol=args.atol, rtol=args.rtol, spreads=spreads, **kw
            )
        return _report(report, source, args.json)

    print(
        f"converting {args.model or args.prototxt} ({args.framework}) into {args.save_dir} ...",
        file=sys.stderr,
    )
    if args.framework == "onnx":
        from ._atomic import prepare_output
        from .convert import _check_file, _validate_onnx, check_shape_dict

        shapes = check_shape_dict(args.input_shape_dict)
        values = _input_values(args.input_value)
        prepare_output(args.save_dir, overwrite=args.overwrite)
        model = _check_file(args.model, "ONNX model")
        _validate_onnx(model)
        check_shape_dict(shapes, model)
        if args.verify:
            # the source model's answer first: a bad input shape or a crash of the source
            # runtime is reported before anything is written
            inputs = sources.onnx_inputs(model, shapes, args.seed)
            for name, value in values.items():
                if name in inputs:
                    inputs[name] = np.asarray(value, dtype=inputs[name].dtype).reshape(
                        inputs[name].shape
                    )
            print(
                "running onnxruntime on inputs "
                + ", ".join(f"{k} {list(v.shape)}" for k, v in inputs.items()),
                file=sys.stderr,
            )
            refs = sources.run_onnx_isolated(model, inputs)
            plain = sources.run_onnx_isolated(model, inputs, optimize=False)
        xc.convert_onnx(
            model,
            args.save_dir,
            input_shape_dict=shapes,
            input_values=values,
            enable_onnx_checker=_bool(args.enable_onnx_checker),
            overwrite=args.overwrite,
        )
        if args.verify:
            feed = {k: v for k, v in inputs.items() if k not in values}  # frozen: no input
            return check(feed, refs, "onnxruntime", spread(refs, plain))
    elif args.framework == "tensorflow":
        xc.convert_tensorflow(
            args.model,
            args.save_dir,
            define_input_shape=args.define_input_shape,
            overwrite=args.overwrite,
        )
        if args.verify:
            inputs = sources.tf_inputs(args.model, args.seed)
            try:
                refs = sources.run_tensorflow(args.model, inputs)
            except Exception as exc:
                raise xc.SourceRuntimeError(
                    f"TensorFlow failed on the verification inputs: {exc}", args.model
                ) from exc
            return check(inputs, refs, "TensorFlow")
    else:
        xc.convert_caffe(
            args.prototxt,
            args.weight,
            args.save_dir,
            caffe_proto=args.caffe_proto,
            overwrite=args.overwrite,
        )
        if args.verify:
            # No Caffe runtime exists for Python 3.11: the predictor configurations are
            # verified against the converted dygraph model instead (said in the output).
            import numpy as np

            from .verify import input_names, run_dygraph

            rng = np.random.default_rng(args.seed)
            inputs = {}
            meta = _caffe_input_shapes(args.save_dir)
            for name in input_names(args.save_dir):
                inputs[name] = rng.standard_normal(meta.get(name, [1, 3, 224, 224])).astype(
                    "float32"
                )
            refs = run_dygraph(args.save_dir, inputs)
            return check(
                inputs,
                refs,
                "the converted dygraph model (no Caffe runtime available)",
                check_dygraph=False,
            )
    print(f"converted into {args.save_dir} (not verified: add --verify)")
    return 0


def _input_values(items: list[str]) -> dict:
    """``["sr=16000", ...]`` -> ``{"sr": 16000}`` (values as Python literals)."""
    from .errors import InvalidModelError

    values = {}
    for item in items:
        name, sep, text = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError(item)
            values[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise InvalidModelError(
                f"--input-value {item!r} is not NAME=VALUE with a number or a list as VALUE"
            ) from exc
    return values


def _caffe_input_shapes(folder) -> dict:
    import re

    code = (Path(folder) / "x2paddle_code.py").read_text(encoding="utf-8")
    shapes = {}
    for name, shape in re.findall(r"InputSpec\(shape=(\[[^\]]*\]), name='([^']+)'", code):
        shapes[shape] = [max(1, int(d)) for d in ast.literal_eval(name)]
    return shapes


def _report(report, source: str, as_json: bool = False) -> int:
    if as_json:
        import json

        print(json.dumps({**report.to_dict(), "source": source}, allow_nan=False))
        return 0 if report.ok else 1
    spread = max(report.spreads, default=0.0)
    print(
        f"verification against {source} "
        f"(pass: max|diff| <= {report.atol:g} + {report.rtol:g} * max|reference|"
        + (f" + 4 * {spread:.1e}, the source runtime's own spread)" if spread else ")")
    )
    print(report.table())
    cfg = report.predictor_config
    if cfg:
        print(f"deploy.json: use_onednn={cfg['use_onednn']} ({cfg['reason']})")
    if not report.ok:
        print(
            "VERIFICATION FAILED: the converted model does not match the source model",
            file=sys.stderr,
        )
        return 1
    print("verified: OK")
    return 0


def _demo(args) -> int:
    """A small conv/pool/resize/GRU-free ONNX graph built with onnx.helper."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype("float32"), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype("float32"), "b")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], "float32"), "scales")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node(
            "MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], dilations=[1, 1]
        ),
        helper.make_node(
            "Resize",
            ["p", "", "scales"],
            ["u"],
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        ),
        helper.make_node("ReduceMean", ["u"], ["y"], axes=[1], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "demo",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 16, 16])],
        [w, b, scales],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    work = Path(tempfile.mkdtemp(prefix="x2paddle3-demo-"))
    onnx.save(model, work / "demo.onnx")
    print(
        f"demo: ONNX model with Conv, MaxPool(dilations=1), Resize(scales only), "
        f"ReduceMean -> {work}"
    )
    argv = ["-f", "onnx", "-m", str(work / "demo.onnx"), "-s", str(work / "paddle"), "--verify"]
    return _main(argv + (["--verbose"] if args.verbose else []))


if __name__ == "__main__":
    sys.exit(main())
