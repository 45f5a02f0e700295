"""The ``upgrade-program`` subcommand (argument parsing and messages only)."""

from __future__ import annotations

import argparse
import sys

from .._errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, UserError, describe_os_error

HELP = "rewrite a Paddle 2.x inference model's retired operators and save a Paddle 3 PIR model"
DESCRIPTION = """\
Reads a Paddle 2.x inference model (protobuf ProgramDesc OLD.pdmodel + OLD.pdiparams, as written
by paddle.static.save_inference_model or paddle.jit.save), rewrites every operator that Paddle 3
retired into its current equivalent (matmul -> matmul_v2 with alpha folded, lookup_table ->
lookup_table_v2, v1 *_interp -> *_interp_v2 with the v1 size and ratio rules, reshape ->
reshape2, crop -> crop_tensor, soft_relu and data_norm rebuilt from current ops, collectives of
a single-card program -> assign, ...), and writes NEW_PREFIX.json + NEW_PREFIX.pdiparams, which
paddle.jit.load and the Paddle Inference predictor load.

Reading and rewriting need no Paddle; the PIR translation and saving use the installed Paddle
(>= 3.0). Operators that cannot be carried over exactly are all listed, and nothing is written.
The parameter file is checked against the program (count, element types, shapes) first.
"""
EPILOG = """\
examples:
  paddle-op-migrator upgrade-program old/inference new/inference
  paddle-op-migrator upgrade-program old/model.pdmodel new/model --overwrite
  paddle-op-migrator upgrade-program old_dir_with___model__ new/model
exit status: 0 written, 2 bad input (nothing written), 130 interrupted
"""


def add_parser(sub) -> None:
    s = sub.add_parser("upgrade-program", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    s.add_argument("old", metavar="OLD_PREFIX",
                   help="old model: prefix of PREFIX.pdmodel/.pdiparams, the .pdmodel file, or a "
                        "folder with __model__")  # fmt: skip
    s.add_argument(
        "new", metavar="NEW_PREFIX", help="writes NEW_PREFIX.json and NEW_PREFIX.pdiparams"
    )
    s.add_argument("--overwrite", action="store_true",
                   help="replace existing NEW_PREFIX.json/.pdiparams (only once the new ones are complete)")  # fmt: skip
    s.add_argument("--collectives", choices=("single-card", "new-comm"), default="single-card",
                   help="single-card (default): collective ops of the lists become identities "
                        "(assign), exact on one card; new-comm: rewrite them to the "
                        "new-communication ops (all_reduce, broadcast, ...) for a distributed run")  # fmt: skip
    s.add_argument("--verbose", action="store_true", help="let Paddle print its own logs")
    s.set_defaults(fn=run)


def run(args) -> int:
    from .._paddle import native_stdout_to_stderr, quiet_paddle

    quiet_paddle(args.verbose)
    try:
        from . import upgrade_program

        with native_stdout_to_stderr(not args.verbose):
            res = upgrade_program(args.old, args.new, overwrite=args.overwrite,
                                  collectives=args.collectives)  # fmt: skip
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"{res.model}" + (f" {res.params}" if res.params else ""))
    return 0
