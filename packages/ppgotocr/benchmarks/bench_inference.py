"""Inference speed and memory: ppgotocr (Paddle) vs transformers' GotOcr2ForConditionalGeneration
(torch) on the same mid-size random config (1024 px input, 256 image tokens), fp32 CPU.

Each framework runs in its own subprocess (so peak RSS is its own). Measured: per image (vision + prefill + N greedy tokens), the vision encoder alone, and
decoder tokens/s from a text-only prompt, (N - 1) / (t_N - t_1). Ratios are paddle / torch measured in the same run.
Prints the result and writes ``benchmarks/results/inference.local.json`` (``inference_<vision>``
for another tower); ``--record`` writes the committed ``inference.json`` instead.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import add_record_flag, load_average, write_result  # noqa: E402

N_NEW = int(os.environ.get("PPGOTOCR_BENCH_TOKENS", "64"))
REPEATS = int(os.environ.get("PPGOTOCR_BENCH_REPEATS", "2"))
# "mid": a mid-size vision tower; "sam-b": the real GOT vision tower's shape (SAM ViT-B:
# 768 x 12 layers, 12 heads, global attention at 2/5/8/11, neck 256), random weights
VISION = os.environ.get("PPGOTOCR_BENCH_VISION", "mid")
VOCAB, IMGPAD, EOS = 16000, 15999, 15000
VISION_CONFIGS = {
    "mid": dict(
        hidden_size=192,
        output_channels=64,
        num_hidden_layers=6,
        num_attention_heads=4,
        image_size=1024,
        patch_size=16,
        window_size=14,
        global_attn_indexes=[2, 5],
        mlp_dim=768,
    ),
    "sam-b": dict(
        hidden_size=768,
        output_channels=256,
        num_hidden_layers=12,
        num_attention_heads=12,
        image_size=1024,
        patch_size=16,
        window_size=14,
        global_attn_indexes=[2, 5, 8, 11],
        mlp_dim=3072,
    ),
}
CONFIG = dict(
    vision=VISION_CONFIGS[VISION],
    text=dict(
        vocab_size=VOCAB,
        hidden_size=512,
        intermediate_size=1408,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=8,
    ),
)


def build(folder: Path) -> None:
    import torch
    from transformers import GotOcr2Config, GotOcr2ForConditionalGeneration

    cfg = GotOcr2Config(
        vision_config=CONFIG["vision"],
        text_config=dict(
            **CONFIG["text"],
            eos_token_id=EOS,
            pad_token_id=EOS,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        ),
        image_token_index=IMGPAD,
        image_seq_length=256,
    )
    torch.manual_seed(0)
    model = GotOcr2ForConditionalGeneration(cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" not in n:
                p.normal_(0, 0.05)
    model.save_pretrained(folder)


def inputs():
    import numpy as np

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 15000, 60).tolist()
    ids = ids[:20] + [IMGPAD] * 256 + ids[20:]
    pixels = rng.standard_normal((1, 3, 1024, 1024)).astype("float32")
    return ids, pixels


def worker_torch(folder: str) -> dict:
    import torch
    from transformers import GotOcr2ForConditionalGeneration

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    model = GotOcr2ForConditionalGeneration.from_pretrained(folder).eval()
    ids, pixels = inputs()

    text_ids = [i for i in ids if i != IMGPAD]

    def run(n, with_image=True):
        with torch.no_grad():
            t = time.perf_counter()
            if with_image:
                out = model.generate(
                    input_ids=torch.tensor([ids]),
                    pixel_values=torch.tensor(pixels),
                    do_sample=False,
                    max_new_tokens=n,
                    min_new_tokens=n,
                )
            else:
                out = model.generate(
                    input_ids=torch.tensor([text_ids]),
                    do_sample=False,
                    max_new_tokens=n,
                    min_new_tokens=n,
                )
            return time.perf_counter() - t, out[0, -n:].tolist()

    def vision():
        with torch.no_grad():
            t = time.perf_counter()
            model.model.get_image_features(torch.tensor(pixels))
            return time.perf_counter() - t

    return _measure(run, vision)


def worker_paddle(folder: str) -> dict:
    import paddle

    from ppgotocr.generation import GenerationConfig, greedy_generate
    from ppgotocr.modeling_got_ocr2 import GotOcr2ForConditionalGeneration

    model = GotOcr2ForConditionalGeneration.from_pretrained(folder)
    ids, pixels = inputs()

    text_ids = [i for i in ids if i != IMGPAD]

    def run(n, with_image=True):
        t = time.perf_counter()
        with paddle.no_grad():
            if with_image:
                feats = model.get_image_features(paddle.to_tensor(pixels))
                out = greedy_generate(model, [ids], feats, GenerationConfig(max_new_tokens=n))[0]
            else:
                out = greedy_generate(model, [text_ids], None, GenerationConfig(max_new_tokens=n))[
                    0
                ]
        return time.perf_counter() - t, out

    def vision():
        with paddle.no_grad():
            t = time.perf_counter()
            model.get_image_features(paddle.to_tensor(pixels)).numpy()
            return time.perf_counter() - t

    return _measure(run, vision)


def worker_inference(folder: str) -> dict:
    """The same runs through the Paddle Inference export (``ppgotocr ocr --inference``)."""
    import paddle

    from ppgotocr.export import InferenceModel
    from ppgotocr.generation import GenerationConfig, greedy_generate

    model = InferenceModel(
        Path(folder) / "infer", threads=int(os.environ.get("OMP_NUM_THREADS", "1"))
    )
    ids, pixels = inputs()
    text_ids = [i for i in ids if i != IMGPAD]

    def run(n, with_image=True):
        t = time.perf_counter()
        if with_image:
            feats = model.get_image_features(pixels)
            out = greedy_generate(model, [ids], feats, GenerationConfig(max_new_tokens=n))[0]
        else:
            out = greedy_generate(model, [text_ids], None, GenerationConfig(max_new_tokens=n))[0]
        return time.perf_counter() - t, out

    def vision():
        t = time.perf_counter()
        model.get_image_features(pixels).numpy()
        return time.perf_counter() - t

    result = _measure(run, vision)
    result["onednn"] = dict(model.onednn)
    result["kernels"] = model.describe()
    del paddle
    return result


def _measure(run, vision) -> dict:
    """min over repeats: per image (vision + 316-token prefill + N tokens), vision alone,
    and decoder-only decode speed from a text-only prompt ((N-1) / (t_N - t_1))."""
    run(2)  # warm-up
    run(2, with_image=False)
    per_image, vis, t1, tn = [], [], [], []
    tokens = None
    for _ in range(REPEATS):
        t, tokens = run(N_NEW)
        per_image.append(t)
        vis.append(vision())
        t1.append(run(1, with_image=False)[0])
        tn.append(run(N_NEW, with_image=False)[0])
    decode = (N_NEW - 1) / max(min(tn) - min(t1), 1e-9)
    return {
        "per_image_s": round(min(per_image), 3),
        "vision_s": round(min(vis), 3),
        "decode_tokens_per_s": round(decode, 2),
        "tokens": tokens,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _ratio(a: dict, b: dict, key: str) -> float:
    return round(a[key] / b[key], 3)


def main() -> int:
    workers = {"--torch": worker_torch, "--paddle": worker_paddle, "--inference": worker_inference}
    if len(sys.argv) == 3 and sys.argv[1] in workers:
        print(json.dumps(workers[sys.argv[1]](sys.argv[2])))
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--build":
        from ppgotocr.export import export_inference

        build(Path(sys.argv[2]))
        export_inference(
            sys.argv[2],
            Path(sys.argv[2]) / "infer",
            threads=int(os.environ.get("OMP_NUM_THREADS", "1")),
        )
        return 0
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_record_flag(ap)
    args = ap.parse_args()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        # built in a child: Linux keeps a process's peak RSS across fork + exec, so a large
        # parent would inflate every worker's figure
        subprocess.run([sys.executable, __file__, "--build", tmp], check=True)
        res = {}
        for name in ("torch", "paddle", "inference"):
            out = subprocess.run(
                [sys.executable, __file__, f"--{name}", tmp],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            res[name] = json.loads(out.strip().splitlines()[-1])
    tokens = [res[n].pop("tokens") for n in ("torch", "paddle", "inference")]
    t, p, i = res["torch"], res["paddle"], res["inference"]
    result = {
        "config": CONFIG,
        "vision_config_name": VISION,
        "new_tokens": N_NEW,
        "prompt_tokens": 316,
        "greedy_tokens_identical": tokens[0] == tokens[1] == tokens[2],
        "transformers": t,
        "ppgotocr": p,
        "ppgotocr_inference": i,
        "ratio_paddle_over_torch": {
            "per_image_latency": _ratio(p, t, "per_image_s"),
            "vision_latency": _ratio(p, t, "vision_s"),
            "decode_tokens_per_s": _ratio(p, t, "decode_tokens_per_s"),
            "peak_rss": _ratio(p, t, "peak_rss_mb"),
        },
        "ratio_inference_over_dygraph": {
            "per_image_latency": _ratio(i, p, "per_image_s"),
            "vision_latency": _ratio(i, p, "vision_s"),
            "decode_tokens_per_s": _ratio(i, p, "decode_tokens_per_s"),
        },
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
        "command": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
        f"PPGOTOCR_BENCH_TOKENS={N_NEW} PPGOTOCR_BENCH_VISION={VISION} "
        f"PPGOTOCR_BENCH_REPEATS={REPEATS} python benchmarks/bench_inference.py",
        "ppgotocr_version": __import__("ppgotocr").__version__,
    }
    name = "inference" if VISION == "mid" else f"inference_{VISION}"
    print(json.dumps(result, indent=2))
    print(f"wrote {write_result(name, result, args.record).name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
