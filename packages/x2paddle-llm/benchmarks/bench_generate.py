"""Generation speed: Paddle dygraph and Paddle Inference vs transformers (torch), same config.

    python benchmarks/bench_generate.py --family dense --threads 1 --new-tokens 32   # also moe, moe64, mla

A random model of about 100M parameters is built with transformers (``dense``: Llama, hidden
768, 8 layers, GQA 12/4; ``moe``: Qwen3-MoE, 8 experts top-2; ``mla``: DeepSeek-V3 with latent
attention and a routed + shared MoE; ``moe64``: Qwen3-MoE, 64 experts top-8), converted, exported; each runs greedy decoding of
``--new-tokens`` tokens after a ``--prompt-len`` prompt (batch ``--batch``).  The four are
timed in ``--repeats`` interleaved rounds (each round runs every one once, the order rotating
from round to round) so that they all see the same machine state; each one's best round
counts, and its median is stored too.  Results are tokens/s and the ratios to transformers
measured in the same run;
the token sequences of all four are checked to be identical.  The result is printed and
written to ``results/<name>.local.json``; ``--record`` updates the committed ``<name>.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


# Qwen3-MoE's attention and width, shared by the two MoE layouts below
_QWEN3_MOE = dict(
    hidden_size=512,
    num_attention_heads=8,
    num_key_value_heads=4,
    head_dim=64,
    norm_topk_prob=True,
)

FAMILIES = {
    "dense": (
        "llama",
        dict(
            hidden_size=768, intermediate_size=2048, num_attention_heads=12, num_key_value_heads=4
        ),
    ),
    # Mixtral's layout: few large experts, top-2
    "moe": (
        "qwen3_moe",
        dict(_QWEN3_MOE, num_experts=8, num_experts_per_tok=2, moe_intermediate_size=768),
    ),
    # many small experts, as Qwen3-MoE (128, top-8), OLMoE (64, top-8) and DeepSeek-V3 (256,
    # top-8) are built: the exported step runs every expert, the eager one only the chosen
    "moe64": (
        "qwen3_moe",
        dict(_QWEN3_MOE, num_experts=64, num_experts_per_tok=8, moe_intermediate_size=128),
    ),
    "mla": (
        "deepseek_v3",
        dict(
            hidden_size=768,
            intermediate_size=2048,
            num_attention_heads=12,
            num_key_value_heads=12,
            q_lora_rank=384,
            kv_lora_rank=256,
            qk_nope_head_dim=64,
            qk_rope_head_dim=32,
            v_head_dim=64,
            n_routed_experts=8,
            num_experts_per_tok=2,
            moe_intermediate_size=512,
            n_shared_experts=1,
            first_k_dense_replace=1,
            n_group=1,
            topk_group=1,
        ),
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--layers", type=int, default=8, help="8 layers = about 100M parameters")
    ap.add_argument("--family", choices=sorted(FAMILIES), default="dense")
    ap.add_argument("--note", default="", help="free text stored in the result (e.g. the commit)")
    from _common import add_record_flag

    add_record_flag(ap)
    args = ap.parse_args()
    load_at_start = round(os.getloadavg()[0], 2)
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
    model_type, extra = FAMILIES[args.family]
    cfg = transformers.AutoConfig.for_model(
        model_type,
        vocab_size=32000,
        num_hidden_layers=args.layers,
        max_position_embeddings=2048,
        eos_token_id=2,
        bos_token_id=1,
        pad_token_id=0,
        **extra,
    )
    torch.manual_seed(0)
    ref = transformers.AutoModelForCausalLM.from_config(cfg).eval()
    params = sum(p.numel() for p in ref.parameters())
    rng = np.random.default_rng(0)
    prompts = [rng.integers(3, 32000, args.prompt_len).tolist() for _ in range(args.batch)]
    ids, mask = left_pad(prompts, 0)
    kw = dict(max_new_tokens=args.new_tokens, eos_token_id=[], pad_token_id=0)
    ref.generation_config.eos_token_id = None

    def rounds(contenders: dict) -> tuple[dict, dict, dict]:
        """Best and median seconds and the last output of each, over interleaved rounds."""
        names = list(contenders)
        times = {n: [] for n in names}
        outs = {}
        for r in range(args.repeats):
            for n in names[r % len(names) :] + names[: r % len(names)]:
                t0 = time.perf_counter()
                outs[n] = contenders[n]()
                times[n].append(time.perf_counter() - t0)
        best = {n: min(t) for n, t in times.items()}
        median = {n: float(np.median(t)) for n, t in times.items()}
        return best, median, outs

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

        ours = DecoderForCausalLM.from_pretrained(tmp / "pd")
        export_inference(tmp / "pd", tmp / "inf")
        runner = InferenceRunner(
            tmp / "inf", threads=args.threads
        )  # auto: the fastest probe-verified configuration
        plain = InferenceRunner(tmp / "inf", mode="plain", threads=args.threads)
        best, median, outs = rounds(
            {
                "hf": run_hf,
                "pd": lambda: generate(ours, prompts, **kw),
                "inf": lambda: runner.generate(prompts, **kw),
                "plain": lambda: plain.generate(prompts, **kw),
            }
        )
        t_hf, t_pd, t_inf, t_plain = (best[n] for n in ("hf", "pd", "inf", "plain"))
        tok_hf, tok_pd, tok_inf, tok_plain = (outs[n] for n in ("hf", "pd", "inf", "plain"))

    n = args.new_tokens * args.batch
    name = f"generate_{args.family}_{params // 1_000_000}m_t{args.threads}_b{args.batch}"
    version = __import__("x2paddle_llm").__version__
    this_run = {
        "load_average_1min_at_start": load_at_start,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "transformers_tokens_per_s": round(n / t_hf, 2),
        "paddle_dygraph_tokens_per_s": round(n / t_pd, 2),
        "paddle_inference_tokens_per_s": round(n / t_inf, 2),
        "paddle_inference_plain_tokens_per_s": round(n / t_plain, 2),
        "repeats": args.repeats,
        "timing": "interleaved rounds, best of repeats",
        "median_tokens_per_s": {
            key: round(n / median[short], 2)
            for key, short in (
                ("transformers", "hf"),
                ("paddle_dygraph", "pd"),
                ("paddle_inference", "inf"),
                ("paddle_inference_plain", "plain"),
            )
        },
        "predictor_chosen": runner.settings.label,
        "tokens_identical": tok_hf == tok_pd == tok_inf == tok_plain,
    }
    # --record keeps the earlier runs of the same version (a ratio counts once it is repeated)
    runs = []
    committed = Path(__file__).resolve().parent / "results" / f"{name}.json"
    if args.record and committed.is_file():
        import json

        old = json.loads(committed.read_text())
        if old.get("x2paddle_llm_version") == version:
            runs = list(old.get("runs", []))
    runs.append(this_run)
    write_result(
        name,
        {
            "command": f"python benchmarks/bench_generate.py --family {args.family} --threads {args.threads} "
            f"--new-tokens {args.new_tokens} --prompt-len {args.prompt_len} --batch {args.batch} "
            f"--repeats {args.repeats}",
            "family": f"{args.family} ({model_type})",
            "x2paddle_llm_version": version,
            "note": args.note,
            "load_average_1min_at_start": load_at_start,
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
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
            "predictor_chosen": runner.settings.label,
            "predictor_choice_seconds": runner.choice["seconds"],
            "predictor_attempts": runner.attempts,
            "tokens_identical": tok_hf == tok_pd == tok_inf == tok_plain,
            "runs": runs,
        },
        record=args.record,
    )


if __name__ == "__main__":
    main()
