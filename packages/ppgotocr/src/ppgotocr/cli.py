"""``ppgotocr`` command line: ocr, convert, demo, train."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_ocr(args) -> int:
    from .pipeline import GotOcrPipeline
    from .processing import COLORS

    if args.color is not None and args.color not in COLORS:
        raise SystemExit(f"error: unknown color {args.color!r} (choose from {', '.join(COLORS)})")
    from .processing import SYSTEM_CHAT, SYSTEM_TRAIN

    pipe = GotOcrPipeline.from_pretrained(args.model)
    system = SYSTEM_TRAIN if args.system_line == "train" else SYSTEM_CHAT
    kw = dict(ocr_type=args.type, max_new_tokens=args.max_new_tokens,
              no_repeat_ngram_size=args.no_repeat_ngram_size, system=system)
    if args.stop:
        kw["stop_strings"] = args.stop
    if args.multi_page:
        texts = [pipe.ocr(args.images, multi_page=True, **kw)]
        names = ["+".join(args.images)]
    elif args.box or args.color or args.crop or len(args.images) == 1:
        texts = [pipe.ocr(im, box=args.box, color=args.color, crop=args.crop, **kw)
                 for im in args.images]
        names = args.images
    else:
        for im in args.images:  # fail before decoding anything
            pipe.prepare(im, args.type)
        if args.stop:
            raise SystemExit("error: --stop applies to single-image runs (use one image, --box, "
                             "--color, --crop or --multi-page)")
        texts = pipe.ocr_batch(args.images, args.type, args.max_new_tokens,
                               args.no_repeat_ngram_size, args.batch_size, progress=True,
                               system=system)
        names = args.images
    for name, text in zip(names, texts):
        if len(names) > 1:
            print(f"==> {name} <==")
        print(text)
    if args.render:
        from .render import render_html

        render_html("\n\n".join(texts), args.render)
        print(f"rendered to {args.render}", file=sys.stderr)
    return 0


def _cmd_convert(args) -> int:
    from .convert import convert

    out = convert(args.src, args.out, to=args.to)
    print(f"wrote {out}")
    return 0


def _cmd_demo(args) -> int:
    import tempfile

    from PIL import Image, ImageDraw

    from .pipeline import GotOcrPipeline
    from .tiny import build_tiny_model

    print("ppgotocr demo: a TINY model with RANDOM weights, built on the spot (no real GOT "
          "weights are available offline); the text it prints is meaningless by design.")
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_model(Path(tmp) / "tiny-got")
        img = Image.new("RGB", (640, 200), "white")
        ImageDraw.Draw(img).text((20, 80), "Hello GOT-OCR2.0 in Paddle", fill="black")
        path = Path(tmp) / "hello.png"
        img.save(path)
        pipe = GotOcrPipeline.from_pretrained(folder)
        for label, kw in (("plain", {}), ("format", {"ocr_type": "format"}),
                          ("box", {"box": "10,60,400,140"}), ("color", {"color": "red"}),
                          ("crop", {"crop": True}), ("multi-page", {"multi_page": True})):
            image = [path, path] if label == "multi-page" else path
            p = pipe.prepare(image, **kw)
            ids = pipe.generate_ids([p], args.max_new_tokens)[0]
            print(f"[{label:10s}] views={p.pixel_values.shape[0]} prompt_tokens={len(p.input_ids)} "
                  f"query={p.prompt.split('</img>' + chr(10))[1].split('<|im_end|>')[0]!r} "
                  f"generated={len(ids)} tokens -> {pipe.decode(ids)[:40]!r}")
    return 0


def _cmd_train(args) -> int:
    from .training import main_train

    return main_train(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ppgotocr", description="GOT-OCR2.0 in PaddlePaddle.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ocr", help="OCR images with a ppgotocr / transformers / original folder",
                       description="Prints the recognised text of each image. Without --box, "
                       "--color, --crop or --multi-page, several images are decoded as left-"
                       "padded batches (each result equals its single-image run).")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--model", required=True, help="model folder (any supported layout)")
    p.add_argument("--type", choices=["ocr", "format"], default="ocr",
                   help="plain text, or format (markdown / LaTeX / tables)")
    p.add_argument("--box", help="fine-grained OCR of a region: x1,y1,x2,y2 in pixels")
    p.add_argument("--color", help="fine-grained OCR of text framed in red, green or blue")
    p.add_argument("--crop", action="store_true", help="multi-crop: up to 6 tiles + global view")
    p.add_argument("--multi-page", action="store_true", help="all images are pages of one document")
    p.add_argument("--render", metavar="OUT.html", help="write the output as an HTML page")
    p.add_argument("--max-new-tokens", type=int, default=4096)
    p.add_argument("--no-repeat-ngram-size", type=int, default=None,
                   help="default: 20 for single images (as chat()), off for crop/multi-page")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--stop", action="append", metavar="STRING",
                   help="extra stop string (repeatable); <|im_end|> and eos always stop")
    p.add_argument("--system-line", choices=["chat", "train"], default="chat",
                   help="chat: the original chat()'s system line (8-space indent, default); "
                   "train: the un-indented line the original trains with")
    p.set_defaults(func=_cmd_ocr)

    p = sub.add_parser("convert", help="convert weights between layouts, tensor by tensor",
                       description="SRC may be a transformers GotOcr2 folder, an original "
                       "stepfun GOT folder or a ppgotocr folder. OUT must not exist or be empty.")
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--to", choices=["paddle", "transformers", "original"], default="paddle")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("demo", help="run every mode on a tiny random model built on the spot")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("train", help="supervised fine-tuning (the original's data format)")
    from .training import add_train_arguments

    add_train_arguments(p)
    p.set_defaults(func=_cmd_train)
    return parser


def main(argv=None) -> int:
    from .convert import ConversionError
    from .processing import InputError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (InputError, ConversionError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
