"""Bad input: clear errors naming the file and the problem; no half-written export folder."""

import numpy as np
import paddle
import pytest

import speech_pir_export as spe
from speech_pir_export import configs
from speech_pir_export.cli import main


def _leftovers(folder):
    return [p for p in folder.iterdir()]


def test_unknown_model(tmp_path):
    with pytest.raises(KeyError, match="unknown model 'fastspeech3'.*Did you mean"):
        spe.export("fastspeech3", configs.path("fastspeech2"), tmp_path / "o")
    assert _leftovers(tmp_path) == []


def test_config_does_not_match_model(tmp_path):
    with pytest.raises(spe.ConfigError, match="does not describe a fastspeech2 model"):
        spe.export("fastspeech2", configs.path("hifigan"), tmp_path / "o")
    assert _leftovers(tmp_path) == []


def test_missing_config_file(tmp_path):
    with pytest.raises(spe.ConfigError, match="nope.yaml: config file not found"):
        spe.export("hifigan", tmp_path / "nope.yaml", tmp_path / "o")


def test_checkpoint_shape_mismatch(tmp_path):
    from paddlespeech.t2s.models.melgan import MelGANGenerator

    gen = MelGANGenerator(
        in_channels=80, out_channels=4, channels=80, upsample_scales=[5, 5, 3], stacks=2
    )
    ckpt = tmp_path / "snapshot.pdz"
    paddle.save({"generator_params": gen.state_dict()}, str(ckpt))
    stats = tmp_path / "stats.npy"
    np.save(stats, np.stack([np.zeros(80), np.ones(80)]).astype("float32"))
    out = tmp_path / "o"
    with pytest.raises(
        spe.ConfigError,
        match=r"snapshot.pdz: \d+ parameter shapes do not "
        r"match",
    ):
        spe.export("mb_melgan", configs.path("mb_melgan"), out, checkpoint=ckpt, stats=stats)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_checkpoint_needs_statistics(tmp_path):
    ckpt = tmp_path / "snapshot.pdz"
    paddle.save({"generator_params": {}}, str(ckpt))
    with pytest.raises(spe.ConfigError, match="needs its statistics"):
        spe.export("hifigan", configs.path("hifigan"), tmp_path / "o", checkpoint=ckpt)


def test_bad_statistics_shape(tmp_path):
    stats = tmp_path / "stats.npy"
    np.save(stats, np.zeros((3, 80)))
    with pytest.raises(spe.ConfigError, match="stats.npy: statistics must have shape"):
        spe.export("hifigan", configs.path("hifigan"), tmp_path / "o", stats=stats)
    missing = tmp_path / "absent.npy"
    with pytest.raises(spe.ConfigError, match="absent.npy: statistics file not found"):
        spe.export("hifigan", configs.path("hifigan"), tmp_path / "o", stats=missing)


def test_trained_checkpoint_round_trip(tmp_path):
    """A real checkpoint layout (.pdz with generator_params, weight-norm keys) + stats."""
    import yaml
    from paddlespeech.t2s.models.melgan import MelGANGenerator

    cfg = yaml.safe_load(configs.path("mb_melgan").read_text())
    gen = MelGANGenerator(**cfg["generator_params"])
    ckpt = tmp_path / "snapshot.pdz"
    paddle.save({"generator_params": gen.state_dict()}, str(ckpt))
    stats = tmp_path / "stats.npy"
    np.save(stats, np.stack([np.full(80, -2.0), np.full(80, 3.0)]).astype("float32"))
    m = spe.export(
        "mb_melgan",
        configs.path("mb_melgan"),
        tmp_path / "o",
        checkpoint=ckpt,
        stats=stats,
        onednn_check=False,
        progress=False,
    )
    assert m["predictor"]["verified"] and m["random_init"] is False
    assert (tmp_path / "o" / "stats.npy").is_file()


def test_cli_errors(tmp_path, capsys):
    assert (
        main(
            [
                "export",
                "nosuch",
                "--config",
                str(configs.path("hifigan")),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "unknown model 'nosuch'" in capsys.readouterr().err
    assert main(["verify", str(tmp_path)]) == 2
    assert "export.json: not found" in capsys.readouterr().err


def test_cli_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("fastspeech2", "hifigan", "deepspeech2", "u2", "panns_cnn14", "mdtc"):
        assert name in out


@pytest.mark.parametrize(
    "name,edit,message",
    [
        ("wavernn", lambda c: c["model"].update(mode="MOL"), "only WaveRNN mode RAW"),
        ("wavernn", lambda c: c["model"].update(upsample_scales=[4, 5, 3]), "upsample_scales"),
        (
            "ernie_punc",
            lambda c: c["model"].update(pretrained_token="ernie-42"),
            "'ernie-42' is not one of paddlenlp's built-in",
        ),
    ],
)
def test_new_entries_refuse_configs_they_cannot_export(tmp_path, name, edit, message):
    import yaml

    cfg = (
        yaml.safe_load(configs.path("wavernn").read_text())
        if name == "wavernn"
        else {
            "model_type": "ErnieLinear",
            "model": {"pretrained_token": "ernie-1.0", "num_classes": 4},
        }
    )
    edit(cfg)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(spe.ConfigError, match=message):
        spe.export(name, path, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_speaker_table_checkpoint_needs_speaker_map(tmp_path):
    from speech_pir_export import exporter

    spk = tmp_path / "spk.txt"
    spk.write_text("a 0\nb 1\nc 2\n")
    cfg = exporter.load_config(configs.path("fastspeech2_vc"))
    _, built = exporter.build("fastspeech2", cfg, speakers=["a", "b", "c"])
    ckpt = tmp_path / "snapshot.pdz"
    paddle.save({"main_params": built.model.state_dict()}, str(ckpt))
    stats = tmp_path / "stats.npy"
    np.save(stats, np.stack([np.zeros(80), np.ones(80)]).astype("float32"))
    with pytest.raises(spe.ConfigError, match=r"speaker table \(3 speakers\).*--speaker-dict"):
        spe.export(
            "fastspeech2",
            configs.path("fastspeech2_vc"),
            tmp_path / "o",
            checkpoint=ckpt,
            stats=stats,
        )
    assert not (tmp_path / "o").exists()
    m = spe.export(
        "fastspeech2",
        configs.path("fastspeech2_vc"),
        tmp_path / "o",
        checkpoint=ckpt,
        stats=stats,
        speaker_dict=spk,
        onednn_check=False,
        progress=False,
    )
    assert [i["name"] for i in m["graphs"][0]["inputs"]] == ["text", "spk_id"]
    assert m["predictor"]["verified"]
