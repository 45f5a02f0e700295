"""``ppgotocr`` command line: ocr, convert, train, demo, make-tiny.

Arguments are parsed before anything imports Paddle, so ``--help``, ``--version`` and argument
errors are instant; Paddle's own chatter is silenced unless ``--verbose``. Every problem with
the user's input ends as one line ``error: <file>: <problem>`` and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from ._errors import UserError, run_cli

COLORS = ("red", "green", "blue")


# --------------------------------------------------------------------------- ocr
def _cmd_ocr(args) -> int:
    from .render import OUTPUT_FORMATS, format_for_path, format_output

    if args.max_new_tokens <= 0:
        raise UserError(f"--max-new-tokens must be positive, got {args.max_new_tokens}")
    if args.batch_size <= 0:
        raise UserError(f"--batch-size must be positive, got {args.batch_size}")
    for item in args.inputs:
        if not Path(item).is_file():
            raise UserError("no such file" if not Path(item).exists() else "not a file", item)
    targets = []
    if args.output:
        fmt = args.output_format or format_for_path(args.output)
        targets.append((args.output, fmt))
    if args.render:
        targets.append((args.render, "html"))
    from ._atomic import prepare_output, write_text

    for path, _ in targets:  # refuse an existing output before loading anything
        prepare_output(path, overwrite=args.overwrite, kind="file")
    assert all(fmt in OUTPUT_FORMATS for _, fmt in targets)

    from ._paddle import native_stdout_to_stderr

    # Paddle's own lines on file descriptor 1 (oneDNN checks of the predictor) never reach
    # stdout, which carries only the result: dropped, or sent to stderr with --verbose
    with native_stdout_to_stderr(True, discard=not args.verbose):
        names, texts, predictor = _recognise(args)
    results = list(zip(names, texts))
    for path, fmt in targets:
        write_text(path, format_output(results, fmt), overwrite=args.overwrite)
        print(f"wrote {path} ({fmt})", file=sys.stderr)
    if args.json:
        import json

        doc = {
            "model": str(args.model),
            "inference": predictor,
            "pages": [{"name": n, "text": t} for n, t in results],
        }
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    elif not args.output:
        sys.stdout.write(format_output(results, "text"))
    return 0


def _recognise(args):
    """(page names, texts, predictor description or None) of the ``ocr`` command."""
    from .documents import load_pages
    from .pipeline import GotOcrPipeline
    from .processing import SYSTEM_CHAT, SYSTEM_TRAIN

    if args.inference:
        pipe = GotOcrPipeline.from_inference(args.model, mode=args.onednn, verbose=args.verbose)
        print(
            "Paddle Inference, kernels verified against the exported model and chosen by "
            f"speed: "
            f"{pipe.model.describe()}",
            file=sys.stderr,
        )
    else:
        pipe = GotOcrPipeline.from_pretrained(args.model)
    pages = load_pages(args.inputs, pipe.config.vision.image_size, crop=args.crop, pages=args.pages)
    system = SYSTEM_TRAIN if args.system_line == "train" else SYSTEM_CHAT
    kw = dict(
        ocr_type=args.type,
        max_new_tokens=args.max_new_tokens,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        system=system,
    )
    if args.multi_page:
        if args.stop:
            kw["stop_strings"] = args.stop
        names = [args.inputs[0] if len(args.inputs) == 1 else "+".join(args.inputs)]
        texts = [pipe.ocr([p.image for p in pages], multi_page=True, **kw)]
    elif args.box or args.color or args.crop or args.stop or len(pages) == 1:
        if args.stop:
            kw["stop_strings"] = args.stop
        names, texts = [p.name for p in pages], []
        bar = _bar(len(pages), "ocr") if len(pages) > 1 else None
        for p in pages:
            texts.append(pipe.ocr(p.image, box=args.box, color=args.color, crop=args.crop, **kw))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    else:
        names = [p.name for p in pages]
        texts = pipe.ocr_batch(
            [p.image for p in pages],
            args.type,
            args.max_new_tokens,
            args.no_repeat_ngram_size,
            args.batch_size,
            progress=True,
            system=system,
        )
    return names, texts, (pipe.model.describe() if args.inference else None)


def _bar(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="page")


# --------------------------------------------------------------------------- other commands
def _cmd_convert(args) -> int:
    from .convert import convert

    out = convert(args.src, args.out, to=args.to, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


def _cmd_export(args) -> int:
    from .export import export_inference

    out = export_inference(args.model, args.out, overwrite=args.overwrite)
    print(f"wrote {out}; run it with: ppgotocr ocr PAGE --model {out} --inference")
    return 0


def _cmd_make_tiny(args) -> int:
    from .tiny import build_tiny_model

    folder = build_tiny_model(args.folder, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {folder} (a tiny GOT model with random weights, for trying the commands)")
    return 0


def _write_examples(folder: Path) -> tuple[Path, Path]:
    """A one-line page as PNG and a two-page PDF (written by Pillow's PDF writer)."""
    from PIL import Image, ImageDraw

    pages = []
    for text in ("Hello GOT-OCR2.0 in Paddle", "Page two: $x^2 + y^2 = z^2$"):
        img = Image.new("RGB", (640, 200), "white")
        ImageDraw.Draw(img).text((20, 80), text, fill="black")
        pages.append(img)
    png, pdf = folder / "hello.png", folder / "hello.pdf"
    pages[0].save(png)
    pages[0].save(pdf, save_all=True, append_images=pages[1:], resolution=72)
    return png, pdf


def _cmd_demo(args) -> int:
    import shlex
    import tempfile

    from ._atomic import atomic_dir
    from .pipeline import GotOcrPipeline
    from .tiny import build_tiny_model

    print(
        "ppgotocr demo: a TINY model with RANDOM weights, built on the spot (no real GOT "
        "weights are available offline); the text it prints is meaningless by design."
    )
    with tempfile.TemporaryDirectory() as scratch:
        with atomic_dir(args.out or Path(scratch) / "demo", overwrite=args.overwrite) as tmp:
            build_tiny_model(tmp / "tiny-got")
            png, pdf = _write_examples(tmp)
            pipe = GotOcrPipeline.from_pretrained(tmp / "tiny-got")
            for label, kw in (
                ("plain", {}),
                ("format", {"ocr_type": "format"}),
                ("box", {"box": "10,60,400,140"}),
                ("color", {"color": "red"}),
                ("crop", {"crop": True}),
                ("multi-page", {"multi_page": True}),
            ):
                image = [png, png] if label == "multi-page" else png
                p = pipe.prepare(image, **kw)
                ids = pipe.generate_ids([p], args.max_new_tokens)[0]
                query = p.prompt.split("</img>" + chr(10))[1].split("<|im_end|>")[0]
                print(
                    f"[{label:10s}] views={p.pixel_values.shape[0]} "
                    f"prompt_tokens={len(p.input_ids)} query={query!r} "
                    f"generated={len(ids)} tokens -> {pipe.decode(ids)[:40]!r}"
                )
    if args.out:
        out = Path(args.out)
        model, png, pdf = (
            shlex.quote(str(out / n)) for n in ("tiny-got", "hello.png", "hello.pdf")
        )
        print(f"\nkept in {out}; try:")
        print(f"  ppgotocr ocr {png} --model {model} --max-new-tokens 16")
        print(
            f"  ppgotocr ocr {pdf} --model {model} --max-new-tokens 16 --type format "
            f"--output {shlex.quote(str(out / 'hello.html'))}"
        )
        print(f"  ppgotocr ocr {pdf} --model {model} --max-new-tokens 16 --multi-page")
    return 0


def _cmd_train(args) -> int:
    from .training import main_train

    return main_train(args)


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ppgotocr", description="GOT-OCR2.0 in PaddlePaddle.")
    parser.add_argument("--version", action="version", version=f"ppgotocr {__version__}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show Paddle's own log lines and warnings (hidden by default)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "ocr",
        help="OCR images and PDFs with a ppgotocr / transformers / original folder",
        description="Prints the recognised text of each image or PDF page. "
        "Without --box, --color, --crop, --stop or --multi-page, pages are "
        "decoded as left-padded batches (each result equals its single-page run).",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="FILE",
        help="image files (PNG, JPEG, ...) or PDFs (every page, or --pages)",
    )
    p.add_argument(
        "--model",
        required=True,
        help="model folder (any supported layout), or with --inference an export",
    )
    p.add_argument(
        "--inference",
        action="store_true",
        help="run a `ppgotocr export` folder through Paddle Inference",
    )
    p.add_argument(
        "--onednn",
        choices=["auto", "onednn", "plain"],
        default="auto",
        help="with --inference: auto (default) checks the plain CPU kernels and oneDNN against "
        "the exported model per program and runs the faster verified one (chosen at export, "
        "recorded in the folder); onednn or plain: only that one, still checked",
    )
    p.add_argument(
        "--type",
        choices=["ocr", "format"],
        default="ocr",
        help="plain text, or format: Markdown / LaTeX / tables (default %(default)s)",
    )
    p.add_argument("--box", help="fine-grained OCR of a region: x1,y1,x2,y2 in pixels")
    p.add_argument("--color", choices=COLORS, help="fine-grained OCR of text framed in a colour")
    p.add_argument("--crop", action="store_true", help="multi-crop: up to 6 tiles + global view")
    p.add_argument(
        "--multi-page",
        action="store_true",
        help="all pages (images or PDF pages) are one document, one prompt",
    )
    p.add_argument("--pages", metavar="LIST", help="PDF pages to read, e.g. 1,3-5 (default: all)")
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write the result to FILE instead of stdout (format from the suffix: "
        ".txt, .md, .html, or --output-format)",
    )
    p.add_argument(
        "--output-format",
        choices=["text", "markdown", "html"],
        help="text, markdown, or html (a page that renders Markdown and LaTeX offline)",
    )
    p.add_argument("--render", metavar="OUT.html", help="also write the rendered HTML page")
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"model", "inference", "pages": [{"name", "text"}]} as JSON on stdout '
        "instead of text (also with -o)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--max-new-tokens", type=int, default=4096, help="default %(default)s")
    p.add_argument(
        "--no-repeat-ngram-size",
        type=int,
        default=None,
        help="default: 20 for single images (as chat()), off for crop/multi-page",
    )
    p.add_argument(
        "--batch-size", type=int, default=8, help="pages per batch (default %(default)s)"
    )
    p.add_argument(
        "--stop",
        action="append",
        metavar="STRING",
        help="extra stop string (repeatable); <|im_end|> and eos always stop",
    )
    p.add_argument(
        "--system-line",
        choices=["chat", "train"],
        default="chat",
        help="chat: the original chat()'s system line (8-space indent, default); "
        "train: the un-indented line the original trains with",
    )
    p.set_defaults(func=_cmd_ocr)

    p = sub.add_parser(
        "convert",
        help="convert weights between layouts, tensor by tensor",
        description="SRC may be a transformers GotOcr2 folder, an original "
        "stepfun GOT folder or a ppgotocr folder. Everything is checked before "
        "OUT is written; OUT appears only when complete. Needs no Paddle.",
    )
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument(
        "--to",
        choices=["paddle", "transformers", "original"],
        default="paddle",
        help="target layout (default %(default)s)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing, non-empty OUT once the new one is complete",
    )
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser(
        "export",
        help="export to Paddle Inference (vision + projector, and a KV-cache decoder step)",
        description="Writes PIR programs and weights for the vision tower with "
        "the projector and for one decoder step with a KV cache (dynamic batch "
        "and length), plus a probe that `ocr --inference` checks at start-up.",
    )
    p.add_argument("model", help="model folder (any supported layout)")
    p.add_argument("out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("demo", help="run every mode on a tiny random model built on the spot")
    p.add_argument("--max-new-tokens", type=int, default=16, help="default %(default)s")
    p.add_argument(
        "--out", metavar="DIR", help="keep the tiny model and the example PNG / PDF in DIR"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("make-tiny", help="write a tiny random GOT model folder to try commands on")
    p.add_argument("folder")
    p.add_argument("--seed", type=int, default=0, help="default %(default)s")
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    p.set_defaults(func=_cmd_make_tiny)

    p = sub.add_parser(
        "train",
        help="supervised fine-tuning (the original's data format); runs "
        "unchanged under python -m paddle.distributed.launch",
    )
    from .training_args import add_train_arguments

    add_train_arguments(p)
    p.set_defaults(func=_cmd_train)
    return parser


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from ._paddle import quiet_paddle

    quiet_paddle(args.verbose)
    return args.func(args)


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
