"""The ``ppflux`` command line: generate, demo, convert (and LoRA training when present)."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

PIPELINE_HELP = (
    "a diffusers-layout FLUX folder (model_index.json + sub-folders) or a ppflux-saved one"
)


def _add_generate(sub):
    p = sub.add_parser(
        "generate",
        help="text-to-image with a FLUX pipeline folder",
        description="Generate an image from a prompt with FLUX.1 (dev or schnell).",
    )
    p.add_argument("--model", required=True, help=PIPELINE_HELP)
    p.add_argument("--prompt", required=True)
    p.add_argument("--prompt-2", default=None, help="prompt for T5 (default: --prompt)")
    p.add_argument("--steps", type=int, default=28, help="denoising steps (schnell: 4)")
    p.add_argument(
        "--guidance",
        type=float,
        default=3.5,
        help="guidance scale (dev's distilled guidance; schnell ignores it)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--height", type=int, default=1024, help="multiple of 16")
    p.add_argument("--width", type=int, default=1024, help="multiple of 16")
    p.add_argument(
        "--max-sequence-length", type=int, default=512, help="T5 tokens (<= 512; schnell: 256)"
    )
    p.add_argument(
        "--low-memory",
        action="store_true",
        help="load components one at a time and free them after use",
    )
    p.add_argument(
        "--lora",
        action="append",
        default=[],
        help="LoRA .safetensors to apply (diffusers/PEFT or kohya); repeatable",
    )
    p.add_argument(
        "-o",
        "--output",
        default="out.png",
        help="image file to write (default: out.png); the format follows the suffix",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_generate)


def _generate(args):
    from ._atomic import prepare_output
    from ._errors import UserError

    for dim in (args.height, args.width):
        if dim % 16 or dim < 16:
            raise UserError(
                f"height and width must be positive multiples of 16, got {args.height}x{args.width}"
            )
    if args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    _image_format(Path(args.output))
    prepare_output(args.output, overwrite=args.overwrite, kind="file")
    from .pipelines.pipeline_flux import FluxPipeline

    pipe = FluxPipeline.from_pretrained(args.model, low_memory=args.low_memory)
    if args.lora:
        from .lora import load_lora_into_pipeline

        for i, path in enumerate(args.lora):
            load_lora_into_pipeline(pipe, path, adapter_name=f"lora{i}")
    image = pipe(
        args.prompt,
        prompt_2=args.prompt_2,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        height=args.height,
        width=args.width,
        generator=args.seed,
        max_sequence_length=args.max_sequence_length,
    ).images[0]
    _save_image(image, Path(args.output), args.overwrite)
    print(f"wrote {args.output} ({args.width}x{args.height}, {args.steps} steps, seed {args.seed})")
    return 0


def _image_format(path: Path) -> str:
    from PIL import Image

    from ._errors import UserError

    Image.init()
    fmt = Image.EXTENSION.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"unknown image suffix {path.suffix!r} (use .png, .jpg, .webp ...)", path)
    return fmt


def _save_image(image, path: Path, overwrite: bool = False):
    from ._atomic import atomic_file

    with atomic_file(path, overwrite=overwrite) as handle:
        image.save(handle, format=_image_format(path))


def _add_demo(sub):
    p = sub.add_parser(
        "demo",
        help="build a tiny random FLUX pipeline and generate with it",
        description="Builds a tiny FLUX-shaped pipeline with RANDOM weights on the "
        "spot (no download), saves it, reloads it and runs `generate` "
        "on it. The picture is noise-like: the weights are random. "
        "With --out DIR the pipeline (DIR/pipeline) and the image "
        "(DIR/demo.png) are kept, for the README's other commands.",
    )
    p.add_argument(
        "--out",
        default=None,
        help="folder to keep the tiny pipeline and the image in (default: a "
        "temporary folder, removed at the end)",
    )
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="image to write (default: DIR/demo.png with --out, else ppflux-demo.png "
        "in the temporary folder)",
    )
    p.add_argument("--steps", type=int, default=4, help="denoising steps (default: 4)")
    p.add_argument("--size", type=int, default=128, help="image size in pixels (default: 128)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=_demo)


def _add_make_tiny(sub):
    p = sub.add_parser(
        "make-tiny",
        help="write a tiny random FLUX pipeline folder",
        description="Writes a tiny FLUX.1-dev-shaped pipeline with RANDOM weights "
        "(2 + 2 blocks, hidden 32, 2-layer CLIP and T5, a 16-channel "
        "VAE) to a folder: every command of the README runs on it.",
    )
    p.add_argument("folder", help="output folder (refused if it exists and is not empty)")
    p.add_argument("--schnell", action="store_true", help="no guidance embedding (schnell)")
    p.add_argument("--seed", type=int, default=0, help="weight seed (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    p.set_defaults(func=_make_tiny)


def _make_tiny(args):
    from .tiny import build_tiny_pipeline

    folder = build_tiny_pipeline(
        Path(args.folder),
        guidance_embeds=not args.schnell,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(
        f"wrote {folder}: a tiny FLUX pipeline with RANDOM weights; try\n"
        f"  ppflux generate --model {_quote(folder)} --prompt 'a red cat' --steps 2 "
        "--height 64 --width 64 -o tiny.png"
    )
    return 0


def _quote(path) -> str:
    import shlex

    return shlex.quote(str(path))


def _demo(args):
    from ._atomic import prepare_output
    from .tiny import build_tiny_pipeline

    keep = Path(args.out) if args.out else None
    if keep is not None:
        prepare_output(keep, overwrite=args.overwrite)
    with tempfile.TemporaryDirectory() as tmp:
        root = keep if keep is not None else Path(tmp)
        folder = root / "pipeline"
        output = args.output or str(root / "demo.png" if keep else Path(tmp) / "ppflux-demo.png")
        print("building a tiny FLUX.1-dev-shaped pipeline with RANDOM weights (demo only) ...")
        if keep is not None:
            root.mkdir(parents=True, exist_ok=True)
        build_tiny_pipeline(folder, overwrite=args.overwrite)
        print(f"saved to {folder}: {sorted(p.name for p in folder.iterdir())}")
        ns = argparse.Namespace(
            model=str(folder),
            prompt="a red cat on the moon",
            prompt_2=None,
            steps=args.steps,
            guidance=3.5,
            seed=0,
            height=args.size,
            width=args.size,
            max_sequence_length=64,
            low_memory=True,
            lora=[],
            output=output,
            overwrite=args.overwrite,
        )
        code = _generate(ns)
        if keep is None and args.output is None:
            print("the demo folder is temporary and is removed now; keep it with --out DIR")
    if keep is not None:
        print(
            "the pipeline is kept; the README's commands run on it, e.g.\n"
            f"  ppflux generate --model {_quote(folder)} --prompt 'a red cat' --steps 2 "
            f"--height 64 --width 64 -o {_quote(root / 'cat.png')}"
        )
    print(
        "note: the weights are random, so the image is not meaningful; with a real FLUX.1 "
        "folder run: ppflux generate --model FLUX.1-dev --prompt '...' -o out.png"
    )
    return code


def _add_convert(sub):
    p = sub.add_parser(
        "convert",
        help="convert checkpoints",
        description="Original single-file FLUX checkpoints (flux1-dev/schnell.safetensors, "
        "XLabs ControlNets) -> a diffusers model folder (streaming, any width and "
        "depth; needs neither Paddle nor torch); or a diffusers folder (model or "
        "pipeline) -> a Paddle-layout folder.",
    )
    p.add_argument("source", help="a .safetensors file (original layout) or a diffusers folder")
    p.add_argument(
        "output",
        help="output folder (written to a temporary folder, then renamed; "
        "refused if it exists and is not empty)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output folder (only once the new one is complete)",
    )
    p.add_argument(
        "--kind",
        choices=["auto", "transformer", "controlnet"],
        default="auto",
        help="what the original single file holds (default: detect from keys)",
    )
    p.add_argument(
        "--axes-dims-rope",
        type=int,
        nargs=3,
        default=None,
        help="RoPE split of the head dim (default: 16 56 56 for head dim 128)",
    )
    p.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default=None,
        help="re-encode tensors (default: keep the stored dtype)",
    )
    p.set_defaults(func=_convert)


def _convert(args):
    from ._atomic import prepare_output
    from ._errors import UserError

    src = Path(args.source)
    prepare_output(args.output, overwrite=args.overwrite)
    if src.is_file():
        from .convert import convert_original

        config = convert_original(
            src,
            args.output,
            kind=args.kind,
            axes_dims_rope=args.axes_dims_rope,
            dtype=args.dtype,
            overwrite=args.overwrite,
        )
        print(
            f"wrote {args.output}: {config['_class_name']} with {config['num_layers']} double "
            f"+ {config['num_single_layers']} single blocks, hidden "
            f"{config['num_attention_heads'] * config['attention_head_dim']}"
        )
        return 0
    if not src.is_dir():
        raise UserError("no such file or folder", src)
    if (src / "model_index.json").is_file():
        from .pipelines.auto import pipeline_class_for

        cls = pipeline_class_for(src)
        pipe = cls.from_pretrained(src, low_memory=True)
        pipe.save_pretrained(args.output, overwrite=args.overwrite)
        print(f"wrote {args.output}: {cls.__name__} in the Paddle layout")
        return 0
    from .models.loading import read_config

    name = read_config(src).get("_class_name", "FluxTransformer2DModel")
    if name == "FluxControlNetModel":
        from .models.controlnet_flux import FluxControlNetModel as cls
    else:
        from .models.transformer_flux import FluxTransformer2DModel as cls
    cls.from_pretrained(src).save_pretrained(args.output, overwrite=args.overwrite)
    print(f"wrote {args.output}: {name} in the Paddle layout")
    return 0


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="ppflux",
        description="FLUX.1 on PaddlePaddle (PPDiffusers): generate images, "
        "convert checkpoints, train LoRAs.",
    )
    parser.add_argument("--version", action="version", version=f"ppflux {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show info logs and Paddle's own log lines and warnings",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    _add_demo(sub)
    _add_make_tiny(sub)
    _add_convert(sub)
    from .train_dreambooth_lora import add_parser as add_train

    add_train(sub)
    from .train_dreambooth_lora_kontext import add_parser as add_train_kontext

    add_train_kontext(sub)
    return parser


def _main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from ._paddle import quiet_paddle

    quiet_paddle(args.verbose)  # before anything imports Paddle
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except ValueError as exc:
        # argument values the library refuses (sizes, strengths, prompts ...)
        from ._errors import UserError

        if isinstance(exc, UserError):
            raise
        raise UserError(str(exc)) from exc


def main(argv=None) -> int:
    """Entry point of the ``ppflux`` command: exit 2 with ``error: <file>: <problem>`` on bad
    input, 130 on Ctrl-C."""
    from ._errors import run_cli

    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
