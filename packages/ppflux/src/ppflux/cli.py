"""The ``ppflux`` command line: generate, demo, convert (and LoRA training when present)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

PIPELINE_HELP = "a diffusers-layout FLUX folder (model_index.json + sub-folders) or a ppflux-saved one"


def _add_generate(sub):
    p = sub.add_parser("generate", help="text-to-image with a FLUX pipeline folder",
                       description="Generate an image from a prompt with FLUX.1 (dev or schnell).")
    p.add_argument("--model", required=True, help=PIPELINE_HELP)
    p.add_argument("--prompt", required=True)
    p.add_argument("--prompt-2", default=None, help="prompt for T5 (default: --prompt)")
    p.add_argument("--steps", type=int, default=28, help="denoising steps (schnell: 4)")
    p.add_argument("--guidance", type=float, default=3.5,
                   help="guidance scale (dev's distilled guidance; schnell ignores it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--height", type=int, default=1024, help="multiple of 16")
    p.add_argument("--width", type=int, default=1024, help="multiple of 16")
    p.add_argument("--max-sequence-length", type=int, default=512,
                   help="T5 tokens (<= 512; schnell: 256)")
    p.add_argument("--low-memory", action="store_true",
                   help="load components one at a time and free them after use")
    p.add_argument("--lora", action="append", default=[],
                   help="LoRA .safetensors to apply (diffusers/PEFT or kohya); repeatable")
    p.add_argument("-o", "--output", default="out.png", help="image file to write")
    p.set_defaults(func=_generate)


def _generate(args):
    from .pipelines.pipeline_flux import FluxPipeline

    for dim in (args.height, args.width):
        if dim % 16:
            print(f"ppflux: height/width must be multiples of 16, got {args.height}x{args.width}",
                  file=sys.stderr)
            return 2
    pipe = FluxPipeline.from_pretrained(args.model, low_memory=args.low_memory)
    if args.lora:
        from .lora import load_lora_into_pipeline

        for i, path in enumerate(args.lora):
            load_lora_into_pipeline(pipe, path, adapter_name=f"lora{i}")
    image = pipe(args.prompt, prompt_2=args.prompt_2, num_inference_steps=args.steps,
                 guidance_scale=args.guidance, height=args.height, width=args.width,
                 generator=args.seed, max_sequence_length=args.max_sequence_length).images[0]
    _save_image(image, Path(args.output))
    print(f"wrote {args.output} ({args.width}x{args.height}, {args.steps} steps, seed {args.seed})")
    return 0


def _save_image(image, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".partial" + path.suffix)
    image.save(tmp)
    os.replace(tmp, path)


def _add_demo(sub):
    p = sub.add_parser("demo", help="build a tiny random FLUX pipeline and generate with it",
                       description="Builds a tiny FLUX-shaped pipeline with RANDOM weights on the "
                                   "spot (no download), saves it, reloads it and runs `generate` "
                                   "on it. The picture is noise-like: the weights are random.")
    p.add_argument("-o", "--output", default=os.path.join(tempfile.gettempdir(), "ppflux-demo.png"),
                   help="image to write (default: ppflux-demo.png in the temp folder)")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--size", type=int, default=128)
    p.set_defaults(func=_demo)


def _demo(args):
    from .tiny import build_tiny_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "flux-tiny-random"
        print("building a tiny FLUX.1-dev-shaped pipeline with RANDOM weights (demo only) ...")
        build_tiny_pipeline(folder)
        print(f"saved to {folder}: {sorted(p.name for p in folder.iterdir())}")
        ns = argparse.Namespace(model=str(folder), prompt="a red cat on the moon",
                                prompt_2=None, steps=args.steps, guidance=3.5, seed=0,
                                height=args.size, width=args.size, max_sequence_length=64,
                                low_memory=True, lora=[], output=args.output)
        code = _generate(ns)
    print("note: the weights are random, so the image is not meaningful; with a real FLUX.1 "
          "folder run: ppflux generate --model FLUX.1-dev --prompt '...' -o out.png")
    return code


def _add_convert(sub):
    p = sub.add_parser(
        "convert", help="convert checkpoints",
        description="Original single-file FLUX checkpoints (flux1-dev/schnell.safetensors, "
                    "XLabs ControlNets) -> a diffusers model folder (streaming, any width and "
                    "depth; needs neither Paddle nor torch); or a diffusers folder (model or "
                    "pipeline) -> a Paddle-layout folder.")
    p.add_argument("source", help="a .safetensors file (original layout) or a diffusers folder")
    p.add_argument("output", help="output folder (written to a temporary folder, then renamed)")
    p.add_argument("--kind", choices=["auto", "transformer", "controlnet"], default="auto",
                   help="what the original single file holds (default: detect from keys)")
    p.add_argument("--axes-dims-rope", type=int, nargs=3, default=None,
                   help="RoPE split of the head dim (default: 16 56 56 for head dim 128)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None,
                   help="re-encode tensors (default: keep the stored dtype)")
    p.set_defaults(func=_convert)


def _convert(args):
    src = Path(args.source)
    if src.is_file():
        from .convert import convert_original

        config = convert_original(src, args.output, kind=args.kind,
                                  axes_dims_rope=args.axes_dims_rope, dtype=args.dtype)
        print(f"wrote {args.output}: {config['_class_name']} with {config['num_layers']} double "
              f"+ {config['num_single_layers']} single blocks, hidden "
              f"{config['num_attention_heads'] * config['attention_head_dim']}")
        return 0
    if not src.is_dir():
        print(f"ppflux convert: {src}: no such file or folder", file=sys.stderr)
        return 2
    if (src / "model_index.json").is_file():
        from .pipelines.auto import pipeline_class_for

        cls = pipeline_class_for(src)
        pipe = cls.from_pretrained(src, low_memory=True)
        pipe.save_pretrained(args.output)
        print(f"wrote {args.output}: {cls.__name__} in the Paddle layout")
        return 0
    from .models.loading import read_config

    name = read_config(src).get("_class_name", "FluxTransformer2DModel")
    if name == "FluxControlNetModel":
        from .models.controlnet_flux import FluxControlNetModel as cls
    else:
        from .models.transformer_flux import FluxTransformer2DModel as cls
    cls.from_pretrained(src).save_pretrained(args.output)
    print(f"wrote {args.output}: {name} in the Paddle layout")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ppflux", description="FLUX.1 on PaddlePaddle (PPDiffusers): generate images, "
                                   "convert checkpoints, train LoRAs.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"ppflux {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    _add_demo(sub)
    _add_convert(sub)
    try:
        from .train_dreambooth_lora import add_parser as add_train
    except ImportError:
        add_train = None
    if add_train is not None:
        add_train(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"ppflux {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
