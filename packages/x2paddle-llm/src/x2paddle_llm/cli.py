"""``x2paddle-llm``: convert, generate, verify, export."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .errors import X2PaddleLLMError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="x2paddle-llm",
        description="Convert Hugging Face decoder LLMs (Llama, Mistral, Qwen2, Qwen3) to Paddle, "
                    "generate with them, verify against transformers, export for Paddle Inference.",
    )
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("convert", help="convert a Hugging Face checkpoint folder",
                       description="Stream HF_DIR (config.json, *.safetensors [+ index] or pytorch_model*.bin, "
                                   "tokenizer files) into OUT_DIR tensor by tensor. OUT_DIR appears complete or not "
                                   "at all; conversion_report.json lists every tensor with shapes, dtypes, sha256.")
    c.add_argument("hf_dir", type=Path)
    c.add_argument("out_dir", type=Path)
    c.add_argument("--target", choices=["paddle", "paddlenlp"], default="paddle",
                   help="paddle: this package's decoder (default); paddlenlp: a folder "
                        "paddlenlp.transformers.AutoModelForCausalLM loads (Llama, Qwen2, Mistral)")
    c.add_argument("--dtype", choices=["keep", "float32", "float16", "bfloat16"], default="keep",
                   help="weight dtype of the output (default: keep the checkpoint's)")
    c.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")
    c.add_argument("--quiet", action="store_true", help="no progress bar")

    g = sub.add_parser("generate", help="generate text with a converted folder (streams for one prompt)")
    g.add_argument("model_dir", type=Path, help="folder written by `convert` (or `export` with --inference)")
    g.add_argument("--prompt", action="append", default=[], help="prompt text (repeat for a batch)")
    g.add_argument("--ids", action="append", default=[], help="prompt as comma-separated token ids (repeatable)")
    g.add_argument("--max-new-tokens", type=int, default=64)
    g.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--repetition-penalty", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--stop-id", type=int, action="append", default=[], help="extra stop token id (repeatable)")
    g.add_argument("--no-eos", action="store_true", help="ignore the model's eos tokens")
    g.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="compute dtype (bfloat16/float16 need a GPU build of Paddle)")
    g.add_argument("--inference", action="store_true", help="MODEL_DIR is an `export` folder: run paddle.inference")
    g.add_argument("--predictor-mode", choices=["auto", "onednn", "plain"], default="auto",
                   help="with --inference: auto = oneDNN if its start-up probe agrees with the exported "
                        "dygraph outputs, else plain CPU kernels; plain is often faster on CPU")
    g.add_argument("--json", action="store_true", help="print the token ids as JSON instead of text")

    v = sub.add_parser("verify", help="compare OUT_DIR with HF_DIR run by transformers (needs torch)")
    v.add_argument("hf_dir", type=Path)
    v.add_argument("out_dir", type=Path)
    v.add_argument("--max-new-tokens", type=int, default=32)
    v.add_argument("--atol", type=float, default=1e-4)

    e = sub.add_parser("export", help="export a converted folder to a Paddle Inference (PIR) model",
                       description="Writes model.json + model.pdiparams with dynamic batch, sequence and KV-cache "
                                   "length, plus a probe that the runner checks at start-up (oneDNN defects).")
    e.add_argument("model_dir", type=Path)
    e.add_argument("infer_dir", type=Path)
    e.add_argument("--overwrite", action="store_true")
    return p


def _tokenizer(folder: Path):
    path = folder / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def _cmd_generate(args) -> int:
    from .generation import GenerationConfig

    tok = _tokenizer(args.model_dir)
    prompts = [[int(x) for x in s.split(",") if x.strip()] for s in args.ids]
    if args.prompt:
        if tok is None:
            raise SystemExit(f"{args.model_dir}: no tokenizer.json; pass token ids with --ids")
        prompts += [tok.encode(p).ids for p in args.prompt]
    if not prompts:
        raise SystemExit("give at least one --prompt or --ids")
    if args.inference:
        from .export import InferenceRunner

        runner = InferenceRunner(args.model_dir, mode=args.predictor_mode)
        mcfg = runner.config
        print(f"[predictor: oneDNN {'on' if runner.onednn else 'off'}, probe max|diff| {runner.probe_diff:.2e}]",
              file=sys.stderr)
    else:
        from .modeling_decoder import DecoderForCausalLM

        model = DecoderForCausalLM.from_pretrained(args.model_dir, dtype=args.dtype)
        mcfg = model.config
    eos = [] if args.no_eos else list(mcfg.eos_token_id)
    pad = mcfg.pad_token_id if mcfg.pad_token_id is not None else (eos[0] if eos else 0)
    cfg = GenerationConfig(max_new_tokens=args.max_new_tokens, do_sample=args.do_sample,
                           temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                           repetition_penalty=args.repetition_penalty, eos_token_id=eos + args.stop_id,
                           pad_token_id=pad, seed=args.seed)
    stream = len(prompts) == 1 and tok is not None and not args.json
    state = {"ids": [], "text": ""}

    def on_step(tokens, finished):
        if not stream:
            return
        if int(tokens[0]) in cfg.eos_token_id:
            return
        state["ids"].append(int(tokens[0]))
        text = tok.decode(state["ids"])
        print(text[len(state["text"]):], end="", flush=True)
        state["text"] = text

    if args.inference:
        rows = runner.generate(prompts, cfg, on_step=on_step)
    else:
        from .generation import generate

        rows = generate(model, prompts, cfg, on_step=on_step)
    if args.json:
        print(json.dumps(rows))
    elif stream:
        print()
    else:
        for i, row in enumerate(rows):
            text = tok.decode(row) if tok is not None else " ".join(map(str, row))
            print(f"[{i}] {text}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "convert":
            from .convert import convert

            report = convert(args.hf_dir, args.out_dir, target=args.target, dtype=args.dtype,
                             overwrite=args.overwrite, progress=not args.quiet)
            print(f"converted {report['model_type']} -> {args.out_dir} ({args.target}, {report['dtype']}): "
                  f"{report['tensors_mapped']} tensors, {report['bytes_written'] / 1e6:.1f} MB in "
                  f"{report['seconds']:.1f} s ({report['mb_per_s']} MB/s)")
            if report["tensors_ignored"]:
                print(f"ignored (recomputed or tied): {report['tensors_ignored']}")
            return 0
        if args.command == "generate":
            return _cmd_generate(args)
        if args.command == "verify":
            from .verify import verify

            result = verify(args.hf_dir, args.out_dir, max_new_tokens=args.max_new_tokens, atol=args.atol)
            print(f"{result['model_type']}: max |logits diff| = {result['max_abs_logits_diff']:.3e} "
                  f"(atol {args.atol}); greedy tokens agree {result['greedy_tokens_agree']}/"
                  f"{result['greedy_tokens_total']}; rows identical {result['greedy_rows_identical']}")
            print("OK" if result["ok"] else "MISMATCH")
            return 0 if result["ok"] else 1
        if args.command == "export":
            from .export import InferenceRunner, export_inference

            export_inference(args.model_dir, args.infer_dir, overwrite=args.overwrite)
            runner = InferenceRunner(args.infer_dir)
            print(f"exported {args.model_dir} -> {args.infer_dir} (PIR); predictor check: "
                  f"oneDNN {'on' if runner.onednn else 'off'}, probe max|diff| {runner.probe_diff:.2e}; "
                  f"attempts {runner.attempts}")
            return 0
    except (X2PaddleLLMError, FileExistsError, FileNotFoundError, ImportError) as exc:
        print(f"x2paddle-llm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
