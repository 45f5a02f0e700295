"""Generate the op-signature table (operand, result and attribute names of every pd_op op).

PIR JSON files store operands, results and attributes by position only. Paddle knows the
names from its op yaml, and exposes them on ``pir.Operation`` (``get_input_names`` ...).
This script asks the installed Paddle: it writes a tiny program holding one operand-less
instance of each op, lets Paddle deserialize it, and reads the names back.

    python -m netron_paddle_pir.signatures [--output PATH]

Needs Paddle (>= 3.0). The result ships as package data (``web/pir-signatures.json``) and
records the Paddle version it came from.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from ._paddle import require_paddle

DEFAULT_OUTPUT = Path(__file__).parent / "web" / "pir-signatures.json"

# Ops built by hand in Paddle (no generated API function), looked up as well.
MANUAL_OPS = [
    "data",
    "fetch",
    "feed",
    "if",
    "while",
    "pylayer",
    "assert",
    "select_input",
    "select_output",
    "has_elements",
    "array_length",
    "array_read",
    "array_write_",
    "array_to_tensor",
    "create_array",
    "create_array_like",
    "slice_array",
    "slice_array_dense",
    "assign_array",
    "assign_array_",
    "assign_out_",
    "add_n_",
    "add_n_array",
    "fused_gemm_epilogue",
    "split_grad",
    "expand",
    "increment_",
    "shadow_feed",
    "shadow_feed_tensors",
    "tensor_to_array",
    "memcpy",
    "memcpy_h2d",
    "memcpy_d2h",
    "share_data_",
    "full_with_tensor",
    "seed",
]


def _candidate_names(paddle) -> list[str]:
    names = {n for n in dir(paddle._pir_ops) if not n.startswith("_")}
    names.update(MANUAL_OPS)
    return sorted(names)


def _probe(paddle, names: list[str]) -> dict[str, dict]:
    from paddle.base import core

    table: dict[str, dict] = {}
    ops = [{"#": f"1.{name}", "I": [], "O": [], "A": []} for name in names]
    doc = {
        "base_code": {"magic": "pir", "trainable": True, "version": 1},
        "program": {
            "regions": [{"#": "region_0", "blocks": [{"#": "block_0", "args": [], "ops": ops}]}]
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(doc, handle)
        program = paddle.pir.Program()
        core.deserialize_pir_program(path, program, 1)
    for op in program.global_block().ops:
        name = op.name()
        if not name.startswith("pd_op."):
            continue
        try:
            inputs = list(op.get_input_names())
            outputs = list(op.get_output_names())
            attributes = list(op.get_attr_names())
        except ValueError:  # op without OpYamlInfoInterface (if, while, ...)
            continue
        table[name[len("pd_op.") :]] = {
            "inputs": inputs,
            "outputs": outputs,
            "attributes": attributes,
        }
    return table


def generate(paddle=None) -> dict:
    """Return the signature table for the installed Paddle."""
    paddle = paddle or require_paddle()
    paddle.enable_static()
    names = _candidate_names(paddle)
    table: dict[str, dict] = {}
    # Unknown names make the whole deserialization fail, so probe in halves on error.
    pending = [names]
    while pending:
        chunk = pending.pop()
        try:
            table.update(_probe(paddle, chunk))
        except Exception:  # noqa: BLE001 - paddle raises many kinds; split and retry
            if len(chunk) > 1:
                middle = len(chunk) // 2
                pending.extend([chunk[:middle], chunk[middle:]])
    return {
        "paddle_version": paddle.__version__,
        "generator": "netron_paddle_pir.signatures",
        "candidates": len(names),
        # Names Paddle exposes (API functions, hand-listed ops) that have no op-yaml info, such as
        # if/while (named by the reader) or functions that are not ops of their own.
        "without_signature": sorted(set(names) - set(table)),
        "ops": dict(sorted(table.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m netron_paddle_pir.signatures",
        description="Write the pd_op signature table (names of operands, results, attributes) "
        "from the installed Paddle.",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"JSON file to write (default: {DEFAULT_OUTPUT})",
    )
    args = parser.parse_args(argv)
    try:
        table = generate()
    except ImportError as exc:  # no Paddle, or one older than 3.0: say so in one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(table, separators=(",", ":"), sort_keys=False) + "\n", encoding="utf-8"
    )
    tmp.replace(args.output)
    print(
        f"{len(table['ops'])} pd_op signatures from paddle {table['paddle_version']} "
        f"-> {args.output}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
