"""Bad input: wrong folder layouts, missing components, sizes, long prompts."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

import ppflux
from ppflux import FluxPipeline, LayoutError
from ppflux.cli import main


def test_not_a_pipeline_folder(tmp_path, dev_pipe_dir):
    with pytest.raises(LayoutError, match="not a folder"):
        FluxPipeline.from_pretrained(tmp_path / "nope")
    with pytest.raises(LayoutError, match="no model_index.json"):
        FluxPipeline.from_pretrained(tmp_path)
    with pytest.raises(LayoutError, match="single model folder"):
        FluxPipeline.from_pretrained(dev_pipe_dir / "transformer")
    (tmp_path / "flux1-dev.safetensors").write_bytes(b"")
    with pytest.raises(LayoutError, match="ppflux convert"):
        FluxPipeline.from_pretrained(tmp_path)


def test_missing_component(tmp_path, dev_pipe_dir):
    copy = tmp_path / "pipe"
    shutil.copytree(dev_pipe_dir, copy)
    shutil.rmtree(copy / "text_encoder_2")
    with pytest.raises(LayoutError, match="components missing: text_encoder_2"):
        FluxPipeline.from_pretrained(copy)
    (copy / "text_encoder_2").mkdir()
    (copy / "text_encoder_2" / "config.json").write_text(
        (dev_pipe_dir / "text_encoder_2" / "config.json").read_text()
    )
    with pytest.raises(LayoutError, match="no model.safetensors"):
        FluxPipeline.from_pretrained(copy)


def test_size_not_multiple_of_16_is_rounded_with_warning(dev_pipe_dir, caplog):
    pipe = FluxPipeline.from_pretrained(dev_pipe_dir)
    with caplog.at_level(logging.WARNING, logger="ppflux"):
        out = pipe(
            "a cat",
            height=72,
            width=88,
            num_inference_steps=1,
            output_type="np",
            max_sequence_length=16,
            generator=0,
        ).images
    assert "divisible by 16" in caplog.text
    assert out.shape == (1, 64, 80, 3)
    with pytest.raises(ValueError, match="at least 16"):
        pipe("a cat", height=8, width=64, num_inference_steps=1)
    assert (
        main(
            [
                "generate",
                "--model",
                str(dev_pipe_dir),
                "--prompt",
                "x",
                "--height",
                "70",
                "-o",
                "x.png",
            ]
        )
        == 2
    )


def test_long_prompt_truncated_with_warning(dev_pipe_dir, caplog):
    pipe = FluxPipeline.from_pretrained(dev_pipe_dir)
    prompt = " ".join(["a red cat on the moon"] * 30)
    with caplog.at_level(logging.WARNING, logger="ppflux"):
        embeds, pooled, ids = pipe.encode_prompt(prompt, max_sequence_length=16)
    assert embeds.shape[1] == 16 and ids.shape[0] == 16
    assert "max_sequence_length" in caplog.text and "CLIP" in caplog.text
    with pytest.raises(ValueError, match="greater than 512"):
        pipe(prompt, max_sequence_length=600, height=32, width=32, num_inference_steps=1)


def test_prompt_argument_errors(dev_pipe_dir):
    pipe = FluxPipeline.from_pretrained(dev_pipe_dir)
    with pytest.raises(ValueError, match="either `prompt` or `prompt_embeds`"):
        pipe(height=32, width=32)
    embeds = np.zeros((1, 8, 32), np.float32)
    import paddle

    with pytest.raises(ValueError, match="pooled_prompt_embeds"):
        pipe(prompt_embeds=paddle.to_tensor(embeds), height=32, width=32)


def test_cli_generate_writes_png(dev_pipe_dir, tmp_path):
    from PIL import Image

    out = tmp_path / "img.png"
    assert (
        main(
            [
                "generate",
                "--model",
                str(dev_pipe_dir),
                "--prompt",
                "a red cat",
                "--steps",
                "2",
                "--height",
                "32",
                "--width",
                "48",
                "--seed",
                "3",
                "--max-sequence-length",
                "16",
                "--low-memory",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert Image.open(out).size == (48, 32)
    assert (
        main(["generate", "--model", str(tmp_path), "--prompt", "x", "-o", str(tmp_path / "y.png")])
        == 2
    )
    assert not (tmp_path / "y.png").exists()


def test_cli_help_version_and_demo(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "train-dreambooth-lora" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert f"ppflux {ppflux.__version__}" in capsys.readouterr().out
    out = tmp_path / "demo.png"
    assert main(["demo", "-o", str(out), "--steps", "1", "--size", "32"]) == 0
    assert out.is_file() and "RANDOM" in capsys.readouterr().out
