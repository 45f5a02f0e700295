"""Generation speed: Paddle dygraph and Paddle Inference vs transformers (torch), same config.

    python benchmarks/bench_generate.py --threads 1 --new-tokens 32

A random Llama-style model of about 100M parameters (hidden 768, 8 layers, GQA 12/4 heads,
vocab 32000) is built with transformers, converted, exported; each runs greedy decoding of
``--new-tokens`` tokens after a ``--prompt-len`` prompt (batch ``--batch``), best of
``--repeats``.  Results are tokens/s and the ratios to transformers measured in the same run;
the token sequences of all three are checked to be identical.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--layers", type=int, default=8, help="8 layers = 99.6M parameters")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import numpy as np
    import torch
    import transformers
    from _common import write_result
    from x2paddle_llm.convert import convert
    from x2paddle_llm.export import InferenceRunner, export_inference
    from x2paddle_llm.generation import generate, left_pad
    from x2paddle_llm.modeling_decoder import DecoderForCausalLM

    torch.set_num_threads(args.threads)
    cfg = transformers.LlamaConfig(
        vocab_size=32000,
        hidden_size=768,
        intermediate_size=2048,
        num_hidden_layers=args.layers,
        num_attention_heads=12,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        eos_token_id=2,
        bos_token_id=1,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    ref = transformers.LlamaForCausalLM(cfg).eval()
    params = sum(p.numel() for p in ref.parameters())
    rng = np.random.default_rng(0)
    prompts = [rng.integers(3, 32000, args.prompt_len).tolist() for _ in range(args.batch)]
    ids, mask = left_pad(prompts, 0)
    kw = dict(max_new_tokens=args.new_tokens, eos_token_id=[], pad_token_id=0)
    ref.generation_config.eos_token_id = None

    def best(fn):
        times, out = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ref.save_pretrained(str(tmp / "hf"))
        convert(tmp / "hf", tmp / "pd", progress=False)

        def run_hf():
            with torch.no_grad():
                out = ref.generate(
                    torch.tensor(ids),
                    attention_mask=torch.tensor(mask),
                    do_sample=False,
                    max_new_tokens=args.new_tokens,
                    min_new_tokens=args.new_tokens,
                    pad_token_id=0,
                )
            return out[:, ids.shape[1] :].tolist()

        t_hf, tok_hf = best(run_hf)
        ours = DecoderForCausalLM.from_pretrained(tmp / "pd")
        t_pd, tok_pd = best(lambda: generate(ours, prompts, **kw))
        export_inference(tmp / "pd", tmp / "inf")
        runner = InferenceRunner(
            tmp / "inf", threads=args.threads
        )  # auto: oneDNN if its probe agrees
        t_inf, tok_inf = best(lambda: runner.generate(prompts, **kw))
        plain = InferenceRunner(tmp / "inf", mode="plain", threads=args.threads)
        t_plain, tok_plain = best(lambda: plain.generate(prompts, **kw))

    n = args.new_tokens * args.batch
    write_result(
        f"generate_{params // 1_000_000}m_t{args.threads}_b{args.batch}",
        {
            "command": f"python benchmarks/bench_generate.py --threads {args.threads} --new-tokens {args.new_tokens} "
            f"--prompt-len {args.prompt_len} --batch {args.batch}",
            "parameters": params,
            "threads": args.threads,
            "new_tokens": args.new_tokens,
            "batch": args.batch,
            "transformers_tokens_per_s": round(n / t_hf, 2),
            "paddle_dygraph_tokens_per_s": round(n / t_pd, 2),
            "paddle_inference_tokens_per_s": round(n / t_inf, 2),
            "paddle_inference_plain_tokens_per_s": round(n / t_plain, 2),
            "dygraph_vs_transformers": round(t_hf / t_pd, 3),
            "inference_vs_transformers": round(t_hf / t_inf, 3),
            "inference_plain_vs_transformers": round(t_hf / t_plain, 3),
            "predictor_onednn": runner.onednn,
            "predictor_attempts": runner.attempts,
            "tokens_identical": tok_hf == tok_pd == tok_inf == tok_plain,
        },
    )


if __name__ == "__main__":
    main()
