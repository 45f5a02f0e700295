"""ppflux's Kontext trainer against diffusers' real ``train_dreambooth_lora_flux_kontext.py``.

As ``test_train_script.py`` (same sources, same runner ``run_diffusers_script.py``, nothing of
the script copied): the unmodified script's ``main()`` runs 3 optimisation steps on the tiny
FLUX model, fp32 CPU, and the runner records its draws, initial LoRA, prompt embeddings,
losses, gradient norms and its data order (prepared images, bucket batches, each epoch's batch
order). ppflux trains with the same arguments, replaying them, and the losses, clipping norms
and saved LoRA files are compared.

Which script: ``PPFLUX_DIFFUSERS_REV`` if set, else the tag of the runner's diffusers if the
script is there, else the first release tag after it that has the script (the script appeared
in diffusers 0.35.0, after the 0.32.2 of the test venv). Which interpreter runs it:
``PPFLUX_SCRIPT_PYTHON``, else the venv ``tests/make_script_venv.py`` made (the nox session
makes it), else this one; if that diffusers is older than the script's ``check_min_version``
the tests skip, saying so.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from make_script_venv import default_dir
from test_train import _images
from test_train_kontext import make_pairs_dataset
from test_train_script import ReplaySource, _version, compare_with_script, run_script

from ppflux.train_dreambooth_lora import run_trainer
from ppflux.train_dreambooth_lora_kontext import KontextTrainer, parse_args

HERE = Path(__file__).parent
SCRIPT = "examples/dreambooth/train_dreambooth_lora_flux_kontext.py"
RES = 32


def script_python() -> str:
    if os.environ.get("PPFLUX_SCRIPT_PYTHON"):
        return os.environ["PPFLUX_SCRIPT_PYTHON"]
    made = default_dir() / "bin" / "python"
    return str(made) if made.is_file() else sys.executable


def diffusers_of(python) -> str:
    return subprocess.run(
        [python, "-c", "import diffusers; print(diffusers.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _git(git, *args):
    return subprocess.run(["git", "--git-dir", git, *args], capture_output=True, text=True)


def choose_rev(git, have: str) -> str:
    """PPFLUX_DIFFUSERS_REV, or v<have> if it holds the script, or the first later release
    tag that does."""
    if os.environ.get("PPFLUX_DIFFUSERS_REV"):
        return os.environ["PPFLUX_DIFFUSERS_REV"]
    tags = [t for t in _git(git, "tag").stdout.split() if re.fullmatch(r"v\d+\.\d+\.\d+", t)]
    base = _version(have.split(".dev")[0])
    for tag in sorted(tags, key=_version):
        if _version(tag) >= base and _git(git, "cat-file", "-e", f"{tag}:{SCRIPT}").returncode == 0:
            return tag
    pytest.fail(f"PPFLUX_DIFFUSERS_GIT={git}: no release tag from v{have} on has {SCRIPT}")


def locate_script(tmp_path: Path, python: str) -> Path:
    src, git = os.environ.get("PPFLUX_DIFFUSERS_SRC"), os.environ.get("PPFLUX_DIFFUSERS_GIT")
    if src:
        path = Path(src) / SCRIPT
        if not path.is_file():
            pytest.fail(f"PPFLUX_DIFFUSERS_SRC={src}: no {SCRIPT} there")
        return path
    if not git:
        pytest.skip(
            "diffusers' training scripts are not in its wheel: set PPFLUX_DIFFUSERS_SRC "
            "(a diffusers checkout) or PPFLUX_DIFFUSERS_GIT (a diffusers git dir)"
        )
    rev = choose_rev(git, diffusers_of(python))
    res = _git(git, "show", f"{rev}:{SCRIPT}")
    if res.returncode:
        pytest.fail(f"PPFLUX_DIFFUSERS_GIT={git}: cannot read {rev}:{SCRIPT}: {res.stderr}")
    path = tmp_path / f"train_dreambooth_lora_flux_kontext-{rev}.py"
    path.write_text(res.stdout)
    return path


class KontextReplay(ReplaySource):
    """The script's draws, plus its data order as permutations in ppflux's order of asking:
    each bucket's shuffle, then each epoch's batch order."""

    def __init__(self, draws, kinds, permutations):
        super().__init__(draws, kinds, [])
        self.permutations = list(permutations)

    def permutation(self, n):
        order = self.permutations.pop(0)
        assert sorted(order) == list(range(n)), (order, n)
        return np.asarray(order)


I2I = ["--cond_image_column", "source", "--caption_column", "text"]
CASES = {
    "i2i-mode-logit_normal-accum2": (
        3,
        I2I + ["--weighting_scheme", "logit_normal", "--gradient_accumulation_steps", "2"],
    ),
    "i2i-sample-cosmap-batch2-linear": (
        5,
        I2I
        + ["--vae_encode_mode", "sample", "--weighting_scheme", "cosmap"]
        + ["--train_batch_size", "2", "--lr_scheduler", "linear", "--lr_warmup_steps", "1"],
    ),
    "t2i-folder-buckets-text_encoder-sigma_sqrt": (
        4,
        ["--aspect_ratio_buckets", "32,32;48,32", "--weighting_scheme", "sigma_sqrt"]
        + ["--train_text_encoder", "--text_encoder_lr", "5e-4"],
    ),
}


def _mapping(recorded, mine, what):
    """For each of the script's prepared images, the index of the equal ppflux image (this
    also checks ppflux's bucket resize against torchvision's)."""
    out = []
    for i, img in enumerate(recorded):
        diffs = [np.abs(img - m).max() if m.shape == img.shape else np.inf for m in mine]
        assert min(diffs) < 1e-6, (what, i, diffs)
        out.append(int(np.argmin(diffs)))
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_diffusers_kontext_script(dev_pipe_dir, tmp_path, case, parity):
    python = script_python()
    script = locate_script(tmp_path, python)
    need = re.search(r'check_min_version\("([^"]+)"\)', script.read_text())
    have = diffusers_of(python)
    if need and _version(have) < _version(need.group(1)):
        pytest.skip(
            f"{script.name} needs diffusers >= {need.group(1)}; {python} has {have}: run "
            "tests/make_script_venv.py (the nox session does) or set PPFLUX_SCRIPT_PYTHON"
        )
    n, extra = CASES[case]
    if case.startswith("t2i"):
        data = ["--instance_data_dir", str(_images(tmp_path / "data", n=n))]
        data += ["--instance_prompt", "photo of sks dog"]
    else:
        make_pairs_dataset(tmp_path / "pairs", n=n)
        data = ["--dataset_name", str(tmp_path / "pairs"), "--image_column", "target"]
    common = [
        "--pretrained_model_name_or_path",
        str(dev_pipe_dir),
        *data,
        "--resolution",
        str(RES),
        "--max_sequence_length",
        "16",
        "--seed",
        "0",
        "--train_batch_size",
        "1",
        "--max_train_steps",
        "3",
        "--learning_rate",
        "1e-3",
        "--checkpointing_steps",
        "1000",
        *extra,
    ]
    meta, rec = run_script(
        python, script, tmp_path, common, ["--cache_dir", str(tmp_path / "cache-script")]
    )

    args = parse_args(
        [*common, "--output_dir", str(tmp_path / "ppflux"), "--cache_dir", str(tmp_path / "c")]
    )
    probe = KontextTrainer(args)  # ppflux's prepared images (no random transform here)
    to_mine = _mapping(
        [rec[f"dataset_{i}"] for i in range(meta["n_dataset"])], probe.pixels, "target"
    )
    if probe.has_cond:
        conds = _mapping(
            [rec[f"cond_dataset_{i}"] for i in range(meta["n_dataset"])],
            probe.cond_pixels,
            "condition",
        )
        assert conds == to_mine  # pairs stay pairs
    batches = [[to_mine[i] for i in b] for b in meta["batches"]]
    perms = []
    for bucket in range(len(probe.buckets)):
        members = [i for i, b in enumerate(probe.bucket_of) if b == bucket]
        if not members:
            continue
        seq = [i for b in batches if probe.bucket_of[b[0]] == bucket for i in b]
        perms.append([members.index(i) for i in seq + [m for m in members if m not in seq]])
    assert meta["epochs"], "no training pass recorded"
    for epoch in meta["epochs"]:
        perms.append([meta["batches"].index(b) for b in epoch])
    draws = [rec[f"draw_{i}"] for i in range(len(meta["draw_kinds"]))]
    init = {k[5:]: v for k, v in rec.items() if k.startswith("init:")}
    pe, pooled = rec["prompt_embeds"][:1], rec["pooled_prompt_embeds"][:1]
    prompt = "photo of sks dog" if case.startswith("t2i") else "make it sks"

    trainer = KontextTrainer(
        args,
        random=KontextReplay(draws, meta["draw_kinds"], perms),
        initial_lora=init,
        instance_embeddings=(pe, pooled) if case.startswith("t2i") else None,
        prompt_embeddings={prompt: (pe, pooled)},
    )
    assert trainer.bucket_batches == batches
    run_trainer(trainer)

    def proj_mlp_trained(ref):
        assert any(".proj_mlp." in k for k in ref)

    name = f"diffusers {meta['diffusers']} Kontext script, {case}"
    compare_with_script(
        parity,
        name,
        trainer,
        meta,
        tmp_path,
        "--train_text_encoder" in extra,
        lora_keys=proj_mlp_trained,
    )
