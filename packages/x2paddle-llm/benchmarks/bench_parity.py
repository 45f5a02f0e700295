"""Parity table: every architecture / rope variant of the test-suite against transformers.

    python benchmarks/bench_parity.py

For each tiny random model (tests/conftest.py VARIANTS) it converts, then reports the max
|logits diff| on a left-padded batch of two prompts, the 32 greedy tokens of both rows, and the
exported predictor's 32 tokens, all compared with transformers 5 (torch, fp32 CPU).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))


def main() -> None:
    import argparse

    from _common import add_record_flag, write_result
    from conftest import VARIANTS, build_hf_model, random_prompts

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--variants", nargs="+", default=None, help="only these tests/conftest.py variants"
    )
    add_record_flag(ap)
    args = ap.parse_args()
    unknown = sorted(set(args.variants or ()) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    from x2paddle_llm.convert import convert
    from x2paddle_llm.export import InferenceRunner, export_inference
    from x2paddle_llm.verify import verify

    rows = []
    for name in args.variants or VARIANTS:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            build_hf_model(tmp / "hf", name)
            convert(tmp / "hf", tmp / "pd", progress=False)
            prompts = random_prompts(seed=1, lengths=(6, 13))
            res = verify(tmp / "hf", tmp / "pd", prompts=prompts, max_new_tokens=32)
            export_inference(tmp / "pd", tmp / "inf")
            runner = InferenceRunner(tmp / "inf")
            pred = runner.generate(prompts, max_new_tokens=32, eos_token_id=[2], pad_token_id=0)
            rows.append(
                {
                    "variant": name,
                    "model_type": VARIANTS[name][0],
                    "max_abs_logits_diff": res["max_abs_logits_diff"],
                    "greedy_tokens_agree": f"{res['greedy_tokens_agree']}/{res['greedy_tokens_total']}",
                    "batch_rows_identical": all(res["greedy_rows_identical"]),
                    "predictor_tokens_identical": pred == res["transformers"],
                    "predictor_onednn": runner.onednn,
                }
            )
    print(
        "| family | variant | max abs logits diff | greedy tokens (2 rows, left-padded) "
        "| predictor tokens | predictor oneDNN |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model_type']} | {r['variant']} | {r['max_abs_logits_diff']:.1e} | {r['greedy_tokens_agree']} "
            f"{'identical' if r['batch_rows_identical'] else 'DIFFER'} | "
            f"{'identical' if r['predictor_tokens_identical'] else 'DIFFER'} | {r['predictor_onednn']} |"
        )
    command = "python benchmarks/bench_parity.py" + (
        " --variants " + " ".join(args.variants) if args.variants else ""
    )
    name = "parity" if not args.variants else "parity_" + "_".join(args.variants)
    write_result(name, {"command": command, "rows": rows}, record=args.record)


if __name__ == "__main__":
    main()
