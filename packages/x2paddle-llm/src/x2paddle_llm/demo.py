"""End-to-end demo on an embedded default: a tiny random Qwen2 built with transformers.

    python -m x2paddle_llm.demo          (needs the ``test`` extra: torch + transformers)

No hub access is possible here, so the "checkpoint" is a tiny random model saved in the real
Hugging Face folder layout; every step after that is what a user runs on a real folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def _tiny_checkpoint(folder: Path) -> None:
    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    cfg = transformers.Qwen2Config(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(cfg).eval()
    model.save_pretrained(str(folder))
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i for i in range(3, 64)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(folder / "tokenizer.json"))


def main() -> int:
    from .cli import main as cli

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("== building a tiny random Qwen2 checkpoint with transformers (no hub access here)")
        _tiny_checkpoint(root / "hf")
        steps = [
            ["convert", str(root / "hf"), str(root / "paddle"), "--quiet"],
            ["verify", str(root / "hf"), str(root / "paddle"), "--max-new-tokens", "16"],
            ["generate", str(root / "paddle"), "--prompt", "w5 w6 w7 w8", "--max-new-tokens", "12", "--no-eos"],
            ["generate", str(root / "paddle"), "--prompt", "w5 w6", "--prompt", "w9 w10 w11 w12 w13",
             "--max-new-tokens", "8", "--do-sample", "--top-p", "0.9", "--temperature", "0.8", "--seed", "0"],
            ["export", str(root / "paddle"), str(root / "inference")],
            ["generate", str(root / "inference"), "--inference", "--prompt", "w5 w6 w7 w8", "--max-new-tokens", "12",
             "--no-eos"],
        ]
        for args in steps:
            print(f"\n$ x2paddle-llm {' '.join(a if root.as_posix() not in a else a.replace(root.as_posix(), '.') for a in args)}")
            rc = cli(args)
            if rc != 0:
                return rc
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
