"""``x2paddle-llm``: convert, generate, verify, export."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from ._errors import UserError, run_cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="x2paddle-llm",
        description="Convert Hugging Face decoder LLMs (30+ families: Llama, Qwen, ERNIE 4.5, DeepSeek, Gemma, "
        "Mixtral, Phi, GLM, OLMo ...) to Paddle, generate with them, verify against transformers, "
        "export for Paddle Inference. `x2paddle-llm families` lists them.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"x2paddle-llm {__version__}")
    p.add_argument(
        "--verbose", action="store_true", help="show Paddle's own log lines and warnings"
    )
    sub = p.add_subparsers(dest="command", required=True)
    fmt = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter}

    sub.add_parser(
        "families", **fmt, help="list the supported model families (model_type in config.json)"
    )

    t = sub.add_parser(
        "make-tiny",
        **fmt,
        help="write a tiny random checkpoint of a family to try the commands on "
        "(needs torch + transformers: the test extra)",
    )
    t.add_argument("out_dir", type=Path)
    t.add_argument("--family", default="qwen2", help="model_type of the tiny model")
    t.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")

    c = sub.add_parser(
        "convert",
        **fmt,
        help="convert a Hugging Face checkpoint folder",
        description="Stream HF_DIR (config.json, *.safetensors [+ index] or pytorch_model*.bin, "
        "tokenizer files) into OUT_DIR tensor by tensor. OUT_DIR appears complete or not "
        "at all; conversion_report.json lists every tensor with shapes, dtypes, sha256.",
    )
    c.add_argument("hf_dir", type=Path)
    c.add_argument("out_dir", type=Path)
    c.add_argument(
        "--target",
        choices=["paddle", "paddlenlp"],
        default="paddle",
        help="paddle: this package's decoder (default); paddlenlp: a folder "
        "paddlenlp.transformers.AutoModelForCausalLM loads (Llama, Qwen2, Mistral)",
    )
    c.add_argument(
        "--dtype",
        choices=["keep", "float32", "float16", "bfloat16"],
        default="keep",
        help="weight dtype of the output (default: keep the checkpoint's)",
    )
    c.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")
    c.add_argument("--quiet", action="store_true", help="no progress bar")

    g = sub.add_parser(
        "generate", **fmt, help="generate text with a converted folder (streams for one prompt)"
    )
    g.add_argument(
        "model_dir", type=Path, help="folder written by `convert` (or `export` with --inference)"
    )
    g.add_argument("--prompt", action="append", default=[], help="prompt text (repeat for a batch)")
    g.add_argument(
        "--ids",
        action="append",
        default=[],
        help="prompt as comma-separated token ids (repeatable)",
    )
    g.add_argument("--max-new-tokens", type=int, default=64)
    g.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--repetition-penalty", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument(
        "--stop-id", type=int, action="append", default=[], help="extra stop token id (repeatable)"
    )
    g.add_argument("--no-eos", action="store_true", help="ignore the model's eos tokens")
    g.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "float16"],
        help="compute dtype (bfloat16/float16 need a GPU build of Paddle)",
    )
    g.add_argument(
        "--inference",
        action="store_true",
        help="MODEL_DIR is an `export` folder: run paddle.inference",
    )
    g.add_argument(
        "--predictor-mode",
        choices=["auto", "onednn", "plain"],
        default="auto",
        help="with --inference (default: auto): auto = the faster of the plain CPU kernels and "
        "oneDNN among those whose start-up probe agrees with the exported dygraph outputs (oneDNN "
        "repaired by deleting the passes at fault when wrong); onednn / plain = that one only",
    )
    g.add_argument(
        "--chat",
        action="store_true",
        help="wrap each prompt as a user message with the checkpoint's chat template and stop on its "
        "end tokens",
    )
    g.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout: the new token ids (and text) of every prompt",
    )

    v = sub.add_parser(
        "verify", **fmt, help="compare OUT_DIR with HF_DIR run by transformers (needs torch)"
    )
    v.add_argument("hf_dir", type=Path)
    v.add_argument("out_dir", type=Path)
    v.add_argument("--max-new-tokens", type=int, default=32)
    v.add_argument("--atol", type=float, default=1e-4)

    e = sub.add_parser(
        "export",
        **fmt,
        help="export a converted folder to a Paddle Inference (PIR) model",
        description="Writes model.json + model.pdiparams with dynamic batch, sequence and KV-cache "
        "length, plus a probe that the runner checks at start-up (oneDNN defects).",
    )
    e.add_argument("model_dir", type=Path)
    e.add_argument("infer_dir", type=Path)
    e.add_argument("--overwrite", action="store_true")
    return p


def _tokenizer(folder: Path):
    path = folder / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust library raises plain Exceptions (also for non-UTF-8 files)
        raise UserError(
            f"not a tokenizer the tokenizers library reads ({str(exc).splitlines()[0][:200]})", path
        ) from None


def parse_ids(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]``; anything else is a clear error."""
    ids = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise UserError(
                f"--ids {text!r}: {part!r} is not a token id (comma-separated non-negative integers)"
            )
        ids.append(int(part))
    if not ids:
        raise UserError(f"--ids {text!r}: no token ids")
    return ids


def _cmd_generate(args) -> int:
    from ._paddle import native_stdout_to_stderr
    from .generation import GenerationConfig

    if args.max_new_tokens < 1:
        raise UserError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    if not args.model_dir.is_dir():
        raise UserError(
            "not a folder (expected a folder written by `x2paddle-llm convert` or `export`)",
            args.model_dir,
        )
    tok = _tokenizer(args.model_dir)
    prompts = [parse_ids(s) for s in args.ids]
    stop_ids: list[int] = []
    if args.prompt:
        if tok is None:
            raise UserError("no tokenizer.json; pass token ids with --ids", args.model_dir)
        if args.chat:
            from .chat import ChatTemplate

            template = ChatTemplate.from_folder(args.model_dir)
            prompts += [template.encode(tok, [{"role": "user", "content": p}]) for p in args.prompt]
            stop_ids = template.stop_ids(tok)
        else:
            prompts += [tok.encode(p).ids for p in args.prompt]
    if not prompts:
        raise UserError("give at least one --prompt or --ids")
    with native_stdout_to_stderr():  # Paddle's C++ code may print to stdout while loading
        if args.inference:
            from .export import InferenceRunner

            runner = InferenceRunner(args.model_dir, mode=args.predictor_mode)
            mcfg = runner.config
        else:
            from .modeling_decoder import DecoderForCausalLM

            model = DecoderForCausalLM.from_pretrained(args.model_dir, dtype=args.dtype)
            mcfg = model.config
    if args.inference:
        print(
            f"[predictor: {runner.settings.label}, probe max|diff| {runner.probe_diff:.2e}]",
            file=sys.stderr,
        )
    too_big = sorted({t for p in prompts for t in p if t >= mcfg.vocab_size})
    if too_big:
        raise UserError(
            f"token id(s) {too_big[:5]} outside the vocabulary (size {mcfg.vocab_size})"
        )
    eos = [] if args.no_eos else list(mcfg.eos_token_id)
    pad = mcfg.pad_token_id if mcfg.pad_token_id is not None else (eos[0] if eos else 0)
    cfg = GenerationConfig(
        max_new_tokens=args.max_new_tokens,
        do_sample=args.do_sample,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        eos_token_id=sorted(set(eos + stop_ids + args.stop_id)),
        pad_token_id=pad,
        seed=args.seed,
    )
    stream = len(prompts) == 1 and tok is not None and not args.json
    state = {"ids": [], "text": ""}

    def on_step(tokens, finished):
        if not stream:
            return
        if int(tokens[0]) in cfg.eos_token_id:
            return
        state["ids"].append(int(tokens[0]))
        text = tok.decode(state["ids"])
        print(text[len(state["text"]) :], end="", flush=True)
        state["text"] = text

    if args.inference:
        rows = runner.generate(prompts, cfg, on_step=on_step)
    else:
        from .generation import generate

        rows = generate(model, prompts, cfg, on_step=on_step)
    if args.json:
        out = {"tokens": rows}
        if tok is not None:
            out["text"] = [
                tok.decode([t for t in row if t not in cfg.eos_token_id]) for row in rows
            ]
        print(json.dumps(out))
    elif stream:
        print()
    else:
        for i, row in enumerate(rows):
            text = tok.decode(row) if tok is not None else " ".join(map(str, row))
            print(f"[{i}] {text}")
    return 0


def _main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from ._paddle import quiet_paddle

    quiet_paddle(args.verbose)
    if args.command == "families":
        from .families import supported

        for name, text in supported().items():
            print(f"{name:14s} {text}")
        return 0
    if args.command == "make-tiny":
        from .tiny import make_tiny

        make_tiny(args.out_dir, family=args.family, overwrite=args.overwrite)
        print(f"wrote a tiny random {args.family} checkpoint to {args.out_dir}")
        return 0
    if args.command == "convert":
        from .convert import convert

        report = convert(
            args.hf_dir,
            args.out_dir,
            target=args.target,
            dtype=args.dtype,
            overwrite=args.overwrite,
            progress=not args.quiet,
        )
        print(
            f"converted {report['model_type']} -> {args.out_dir} ({args.target}, {report['dtype']}): "
            f"{report['tensors_mapped']} tensors, {report['bytes_written'] / 1e6:.1f} MB in "
            f"{report['seconds']:.1f} s ({report['mb_per_s']} MB/s)"
        )
        if report["tensors_ignored"]:
            print(f"ignored (recomputed or tied): {report['tensors_ignored']}")
        return 0
    if args.command == "generate":
        return _cmd_generate(args)
    if args.command == "verify":
        from .verify import verify

        result = verify(
            args.hf_dir, args.out_dir, max_new_tokens=args.max_new_tokens, atol=args.atol
        )
        print(
            f"{result['model_type']}: max |logits diff| = {result['max_abs_logits_diff']:.3e} "
            f"(atol {args.atol}); greedy tokens agree {result['greedy_tokens_agree']}/"
            f"{result['greedy_tokens_total']}; rows identical {result['greedy_rows_identical']}"
        )
        print("OK" if result["ok"] else "MISMATCH")
        return 0 if result["ok"] else 1
    if args.command == "export":
        from ._paddle import native_stdout_to_stderr
        from .export import InferenceRunner, export_inference

        with native_stdout_to_stderr():
            export_inference(args.model_dir, args.infer_dir, overwrite=args.overwrite)
            runner = InferenceRunner(args.infer_dir)
        print(
            f"exported {args.model_dir} -> {args.infer_dir} (PIR); predictor check: "
            f"{runner.settings.label} chosen, probe max|diff| {runner.probe_diff:.2e}; "
            f"seconds per probe run {runner.choice['seconds']}"
        )
        return 0
    return 1


def main(argv: list[str] | None = None) -> int:
    """The ``x2paddle-llm`` command: exit 0 on success, 1 for a verify mismatch, 2 for bad input."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
