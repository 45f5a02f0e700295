"""Conversion: layouts (sharded, .bin, dtypes), the report, and bad input (nothing written)."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from conftest import build_hf_model, random_prompts
from safetensors.numpy import load_file

from x2paddle_llm import CheckpointError, ConfigError, UnsupportedArchitectureError
from x2paddle_llm._atomic import OutputExistsError
from x2paddle_llm._errors import UserError
from x2paddle_llm.convert import convert
from x2paddle_llm.modeling_decoder import DecoderForCausalLM


def _logits(folder, ids):
    import paddle

    model = DecoderForCausalLM.from_pretrained(folder)
    with paddle.no_grad():
        return model(paddle.to_tensor(ids))[0].numpy()


def _ref_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


def test_sharded_safetensors_with_index(tmp_path):
    ref = build_hf_model(tmp_path / "one", "qwen2")
    ref.save_pretrained(str(tmp_path / "hf"), max_shard_size="40KB")
    shards = sorted(p.name for p in (tmp_path / "hf").glob("*.safetensors"))
    assert len(shards) > 2 and (tmp_path / "hf" / "model.safetensors.index.json").is_file()
    shutil.copy(tmp_path / "one" / "tokenizer.json", tmp_path / "hf")
    report = convert(tmp_path / "hf", tmp_path / "pd", progress=False)
    assert report["source_files"] == shards and len(report["output_files"]) == len(shards)
    index = json.loads((tmp_path / "pd" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(report["output_files"])
    assert "tokenizer.json" in report["tokenizer_files"]
    ids = np.array([random_prompts(2, (9,))[0]])
    assert np.abs(_logits(tmp_path / "pd", ids) - _ref_logits(ref, ids)).max() <= 1e-4


def test_report_checksums_and_transposes(tiny_llama):
    hf_dir, pd_dir, ref = tiny_llama
    report = json.loads((pd_dir / "conversion_report.json").read_text())
    weights = load_file(str(pd_dir / "model.safetensors"))
    hf = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    assert report["tensors_mapped"] == len(weights) == len(hf)
    for entry in report["tensors"]:
        data = weights[entry["target"]]
        assert hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest() == entry["sha256"]
        source = hf[entry["source"]]
        expected = source.T if entry["transposed"] else source
        assert (
            entry["transposed"] == entry["source"].endswith("proj.weight")
            or entry["source"] == "lm_head.weight"
        )
        np.testing.assert_array_equal(data, expected)


def test_pytorch_bin_checkpoint(tmp_path):
    ref = build_hf_model(tmp_path / "st", "llama-tied")
    (tmp_path / "hf").mkdir()
    shutil.copy(tmp_path / "st" / "config.json", tmp_path / "hf")
    torch.save(
        ref.state_dict(), tmp_path / "hf" / "pytorch_model.bin"
    )  # includes tied lm_head copy
    report = convert(tmp_path / "hf", tmp_path / "pd", progress=False)
    assert report["tensors_ignored"] == ["lm_head.weight"]
    ids = np.array([random_prompts(4, (8,))[0]])
    assert np.abs(_logits(tmp_path / "pd", ids) - _ref_logits(ref, ids)).max() <= 1e-4


def test_sharded_pytorch_bin_with_index(tmp_path):
    ref = build_hf_model(tmp_path / "st", "mistral")
    (tmp_path / "hf").mkdir()
    shutil.copy(tmp_path / "st" / "config.json", tmp_path / "hf")
    state = ref.state_dict()
    names = sorted(state)
    halves = {
        "pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
        "pytorch_model-00002-of-00002.bin": names[len(names) // 2 :],
    }
    weight_map = {}
    for fname, keys in halves.items():
        torch.save({k: state[k] for k in keys}, tmp_path / "hf" / fname)
        weight_map.update({k: fname for k in keys})
    (tmp_path / "hf" / "pytorch_model.bin.index.json").write_text(
        json.dumps({"weight_map": weight_map})
    )
    report = convert(tmp_path / "hf", tmp_path / "pd", progress=False)
    assert report["source_files"] == sorted(halves) and len(report["output_files"]) == 2
    ids = np.array([random_prompts(7, (10,))[0]])
    assert np.abs(_logits(tmp_path / "pd", ids) - _ref_logits(ref, ids)).max() <= 1e-4


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_dtype_conversion_matches_torch_casts(tmp_path, tiny_llama, dtype):
    hf_dir, _, ref = tiny_llama
    report = convert(hf_dir, tmp_path / "pd", dtype=dtype, progress=False)
    assert report["dtype"] == dtype
    from safetensors.torch import load_file as load_torch

    ours = load_torch(str(tmp_path / "pd" / "model.safetensors"))
    name = "model.layers.0.mlp.up_proj.weight"
    expected = ref.state_dict()[name].to(getattr(torch, dtype)).T.contiguous()
    assert ours["layers.0.mlp.up.weight"].dtype == getattr(torch, dtype)
    assert torch.equal(
        ours["layers.0.mlp.up.weight"], expected
    )  # bit-exact rounding (round to nearest even)


def test_bf16_source_checkpoint(tmp_path):
    ref = build_hf_model(tmp_path / "f32", "qwen3")
    ref.to(torch.bfloat16).save_pretrained(str(tmp_path / "hf"))
    report = convert(tmp_path / "hf", tmp_path / "pd", dtype="float32", progress=False)
    assert report["dtype"] == "float32" and all(
        t["source_dtype"] == "bfloat16" for t in report["tensors"]
    )
    ids = np.array([random_prompts(6, (7,))[0]])
    from transformers import AutoModelForCausalLM

    # bf16 weights, fp32 compute (a fresh load: .to(bf16) also rounds the rotary buffer)
    fresh = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"), dtype=torch.float32).eval()
    expected = _ref_logits(fresh, ids)
    assert np.abs(_logits(tmp_path / "pd", ids) - expected).max() <= 1e-4


def test_half_precision_on_cpu_is_a_clear_error(tiny_llama):
    with pytest.raises(ValueError, match="needs a GPU"):
        DecoderForCausalLM.from_pretrained(tiny_llama[1], dtype="bfloat16")


def test_transformers4_config_layout_is_normalised(tmp_path, tiny_llama):
    """Rewrite config.json the 4.x way (rope_theta + rope_scaling, torch_dtype): same result."""
    hf_dir, pd_dir, ref = tiny_llama
    old = tmp_path / "hf4"
    shutil.copytree(hf_dir, old)
    cfg = json.loads((old / "config.json").read_text())
    rope = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rope["rope_theta"]
    cfg["torch_dtype"] = cfg.pop("dtype", "float32") or "float32"
    (old / "config.json").write_text(json.dumps(cfg))
    convert(old, tmp_path / "pd4", progress=False)
    new = json.loads((pd_dir / "config.json").read_text())
    assert json.loads((tmp_path / "pd4" / "config.json").read_text()) == new
    assert new["rope"]["theta"] == 500000.0


# ------------------------------------------------------------------ bad input
def _assert_nothing_written(tmp_path, out):
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_missing_shard(tmp_path):
    ref = build_hf_model(tmp_path / "one", "llama")
    ref.save_pretrained(str(tmp_path / "hf"), max_shard_size="40KB")
    victim = sorted((tmp_path / "hf").glob("model-*.safetensors"))[1]
    victim.unlink()
    with pytest.raises(CheckpointError, match=f"missing.*{victim.name}"):
        convert(tmp_path / "hf", tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, tmp_path / "out")


def test_truncated_safetensors(tmp_path, tiny_llama):
    hf = tmp_path / "hf"
    shutil.copytree(tiny_llama[0], hf)
    path = hf / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(UserError, match="model.safetensors.*truncated"):
        convert(hf, tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, tmp_path / "out")


def test_shape_mismatch(tmp_path, tiny_llama):
    hf = tmp_path / "hf"
    shutil.copytree(tiny_llama[0], hf)
    cfg = json.loads((hf / "config.json").read_text())
    cfg["intermediate_size"] = 96
    (hf / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        CheckpointError, match=r"mlp.gate_proj.weight.*shape \[128, 64\].*\[96, 64\]"
    ):
        convert(hf, tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, tmp_path / "out")


def test_unknown_keys(tmp_path, tiny_llama):
    from safetensors.numpy import save_file

    hf = tmp_path / "hf"
    shutil.copytree(tiny_llama[0], hf)
    state = load_file(str(hf / "model.safetensors"))
    state["model.layers.0.self_attn.mystery.weight"] = np.zeros((4, 4), np.float32)
    save_file(state, str(hf / "model.safetensors"))
    with pytest.raises(CheckpointError, match="unknown tensor.*mystery"):
        convert(hf, tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, tmp_path / "out")


def test_missing_tensor(tmp_path, tiny_llama):
    from safetensors.numpy import save_file

    hf = tmp_path / "hf"
    shutil.copytree(tiny_llama[0], hf)
    state = load_file(str(hf / "model.safetensors"))
    del state["model.layers.1.self_attn.k_proj.weight"]
    save_file(state, str(hf / "model.safetensors"))
    with pytest.raises(
        CheckpointError, match="missing from the checkpoint.*layers.1.self_attn.k_proj"
    ):
        convert(hf, tmp_path / "out", progress=False)


def test_unsupported_architecture(tmp_path, tiny_llama):
    hf = tmp_path / "hf"
    shutil.copytree(tiny_llama[0], hf)
    cfg = json.loads((hf / "config.json").read_text())
    cfg["model_type"], cfg["architectures"] = "bert", ["BertForMaskedLM"]
    (hf / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        UnsupportedArchitectureError, match="bert.*Supported: .*llama.*mistral.*qwen2.*qwen3"
    ):
        convert(hf, tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, tmp_path / "out")


def test_unsupported_rope_type(tmp_path, tiny_llama):
    hf = tmp_path / "hf"
    shutil.copytree(tiny_llama[0], hf)
    cfg = json.loads((hf / "config.json").read_text())
    cfg["rope_parameters"] = {"rope_type": "proportional", "rope_theta": 1e4}
    (hf / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="rope type 'proportional' is not supported"):
        convert(hf, tmp_path / "out", progress=False)


def test_existing_output_needs_overwrite(tmp_path, tiny_llama):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        convert(tiny_llama[0], out, progress=False)
    assert (out / "keep.txt").is_file()
    convert(tiny_llama[0], out, overwrite=True, progress=False)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()


def test_no_weights(tmp_path, tiny_llama):
    hf = tmp_path / "hf"
    hf.mkdir()
    shutil.copy(tiny_llama[0] / "config.json", hf)
    with pytest.raises(CheckpointError, match="no weights found"):
        convert(hf, tmp_path / "out", progress=False)


def test_paddlenlp_target_layout_and_own_loader(tmp_path, tiny_llama):
    """The PaddleNLP folder (prefix ``llama.``, PaddleNLP config) also loads in this package's model."""
    hf_dir, _, ref = tiny_llama
    convert(hf_dir, tmp_path / "nlp", target="paddlenlp", progress=False)
    names = load_file(str(tmp_path / "nlp" / "model.safetensors")).keys()
    assert all(n.startswith(("llama.", "lm_head.")) for n in names)
    cfg = json.loads((tmp_path / "nlp" / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["rope_theta"] == 500000.0
    ids = np.array([random_prompts(8, (9,))[0]])
    assert np.abs(_logits(tmp_path / "nlp", ids) - _ref_logits(ref, ids)).max() <= 1e-4


def test_paddlenlp_target_refuses_qwen3(tmp_path):
    build_hf_model(tmp_path / "hf", "qwen3")
    with pytest.raises(UnsupportedArchitectureError, match="qwen3"):
        convert(tmp_path / "hf", tmp_path / "nlp", target="paddlenlp", progress=False)
    _assert_nothing_written(tmp_path, tmp_path / "nlp")
