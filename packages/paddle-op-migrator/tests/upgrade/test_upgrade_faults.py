"""upgrade-program refuses bad input with one clear line, writes nothing half-done, and
replaces an existing output only with --overwrite (and only once the new one is complete)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from oldprog import program, tensor_bytes, write_model

from paddle_op_migrator.cli import main

pytest.importorskip("paddle")


def run(capsys, *args):
    code = main(["upgrade-program", *map(str, args)])
    err = capsys.readouterr().err
    return code, err


def test_good_model_upgrades_and_runs(tmp_path, capsys):
    """The fixture itself is sound: it upgrades and computes 0.5 * x @ w."""
    import paddle

    old = write_model(tmp_path / "old" / "m")
    code, err = run(capsys, old, tmp_path / "new" / "m")
    assert code == 0, err
    layer = paddle.jit.load(str(tmp_path / "new" / "m"))
    x = np.ones((2, 4), "float32")
    w = np.arange(12, dtype="float32").reshape(4, 3) / 7
    np.testing.assert_allclose(layer(paddle.to_tensor(x)).numpy(), 0.5 * x @ w, atol=1e-6)
    assert "matmul x1" in err


def test_missing_model(tmp_path, capsys):
    code, err = run(capsys, tmp_path / "nope", tmp_path / "new")
    assert code == 2 and "nope.pdmodel: model file does not exist" in err


def test_empty_model_file(tmp_path, capsys):
    (tmp_path / "m.pdmodel").write_bytes(b"")
    code, err = run(capsys, tmp_path / "m", tmp_path / "new")
    assert code == 2 and "m.pdmodel: is empty" in err


def test_random_bytes_are_not_a_program(tmp_path, capsys):
    (tmp_path / "m.pdmodel").write_bytes(np.random.default_rng(1).bytes(300))
    code, err = run(capsys, tmp_path / "m", tmp_path / "new")
    assert code == 2 and "is not a Paddle" in err
    assert not list((tmp_path).glob("new*"))


def test_truncated_program(tmp_path, capsys):
    data = program().SerializeToString()
    (tmp_path / "m.pdmodel").write_bytes(data[: len(data) // 2])
    code, err = run(capsys, tmp_path / "m", tmp_path / "new")
    assert code == 2 and "m.pdmodel: is not a Paddle" in err


def test_pir_json_given_as_old_model(tmp_path, capsys):
    (tmp_path / "m.pdmodel").write_text(json.dumps({"base_code": {"magic": "pir"}}))
    code, err = run(capsys, tmp_path / "m", tmp_path / "new")
    assert code == 2 and "is JSON, not a protobuf program" in err


def test_other_protobuf_is_not_a_program(tmp_path, capsys):
    from google.protobuf import descriptor_pb2

    other = descriptor_pb2.FileDescriptorProto(name="x.proto", package="p")
    other.message_type.add(name="M")
    (tmp_path / "m.pdmodel").write_bytes(other.SerializeToString())
    code, err = run(capsys, tmp_path / "m", tmp_path / "new")
    assert code == 2 and "m.pdmodel: is not a Paddle" in err


def test_program_without_feed_and_fetch(tmp_path, capsys):
    prog = program()
    ops = [op for op in prog.blocks[0].ops if op.type not in ("feed", "fetch")]
    del prog.blocks[0].ops[:]
    prog.blocks[0].ops.extend(ops)
    write_model(tmp_path / "m", prog)
    code, err = run(capsys, tmp_path / "m", tmp_path / "new")
    assert code == 2 and "not an inference model" in err


def test_truncated_params(tmp_path, capsys):
    old = write_model(tmp_path / "m")
    p = tmp_path / "m.pdiparams"
    p.write_bytes(p.read_bytes()[:-5])
    code, err = run(capsys, old, tmp_path / "new")
    assert code == 2 and "m.pdiparams: parameter file ends inside tensor 1" in err


def test_params_of_another_model_count(tmp_path, capsys):
    a = np.zeros((4, 3), "float32")
    old = write_model(tmp_path / "m", params=[a, a])
    code, err = run(capsys, old, tmp_path / "new")
    assert code == 2 and "holds 2 tensors but the program declares 1" in err


def test_params_shape_and_dtype_mismatch(tmp_path, capsys):
    old = write_model(tmp_path / "m", params=[np.zeros((5, 3), "float32")])
    code, err = run(capsys, old, tmp_path / "new")
    assert code == 2 and "w: program says shape [4, 3], file holds [5, 3]" in err
    write_model(tmp_path / "m", params=[np.zeros((4, 3), "int64")])
    code, err = run(capsys, old, tmp_path / "new")
    assert code == 2 and "w: program says float32, file holds int64" in err


def test_params_not_a_param_file(tmp_path, capsys):
    old = write_model(tmp_path / "m")
    (tmp_path / "m.pdiparams").write_bytes(b"PK\x03\x04" + bytes(60))
    code, err = run(capsys, old, tmp_path / "new")
    assert code == 2 and "m.pdiparams: tensor 1" in err


def test_missing_params(tmp_path, capsys):
    old = write_model(tmp_path / "m")
    (tmp_path / "m.pdiparams").unlink()
    code, err = run(capsys, old, tmp_path / "new")
    assert code == 2 and "1 persistable tensors but there is no parameter file m.pdiparams" in err


def test_unmappable_operators_listed_all_at_once(tmp_path, capsys):
    prog = program(extra_ops=[("data_norm", [("slot_dim", "INT", 2)]),
                              ("c_allgather", [("nranks", "INT", 4), ("ring_id", "INT", 0)]),
                              ("another_unknown_op", [])])  # fmt: skip
    old = write_model(tmp_path / "m", prog)
    code, err = run(capsys, old, tmp_path / "new")
    assert code == 2
    assert "3 operator(s) cannot be upgraded (nothing was written)" in err
    assert "block 0 op 2 (data_norm): slot_dim > 0" in err
    assert "block 0 op 3 (c_allgather): nranks=4: not a single-card program" in err
    assert "another_unknown_op (1 op): neither this Paddle nor any upgrade rule knows it" in err
    assert not list(tmp_path.glob("new*"))


def test_existing_output_needs_overwrite_and_survives_a_failed_run(tmp_path, capsys):
    old = write_model(tmp_path / "old" / "m")
    new = tmp_path / "new" / "m"
    assert run(capsys, old, new)[0] == 0
    before = (tmp_path / "new" / "m.json").read_bytes()
    code, err = run(capsys, old, new)
    assert code == 2 and "m.json: exists (pass --overwrite to replace it)" in err
    # a failing run with --overwrite leaves the previous output as it was
    (tmp_path / "old" / "m.pdiparams").write_bytes(tensor_bytes(np.zeros((3, 3), "float32")))
    code, err = run(capsys, old, new, "--overwrite")
    assert code == 2 and (tmp_path / "new" / "m.json").read_bytes() == before
    write_model(tmp_path / "old" / "m")
    assert run(capsys, old, new, "--overwrite")[0] == 0
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["m.json", "m.pdiparams"]


def test_output_inside_a_file(tmp_path, capsys):
    old = write_model(tmp_path / "m")
    (tmp_path / "afile").write_text("x")
    code, err = run(capsys, old, tmp_path / "afile" / "m")
    assert code == 2 and "afile: is not a folder" in err


def test_params_beside_a_program_without_parameters(tmp_path, capsys):
    prog = program()
    block = prog.blocks[0]
    for v in block.vars:
        if v.name == "w":
            v.persistable = False
    block.ops[1].inputs[1].arguments[0] = "x2"
    old = write_model(tmp_path / "m", prog)
    code, err = run(capsys, old, tmp_path / "new")
    assert (
        code == 2 and "the program has no parameters, but this parameter file is beside it" in err
    )


def test_help_explains(capsys):
    with pytest.raises(SystemExit):
        main(["upgrade-program", "--help"])
    out = capsys.readouterr().out
    assert "NEW_PREFIX.json" in out and "--overwrite" in out and "--collectives" in out


def test_folder_layout_with_one_file_per_parameter(tmp_path, capsys):
    """The oldest layout: a folder with __model__ and one file per parameter."""
    import paddle

    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "__model__").write_bytes(program().SerializeToString())
    w = np.arange(12, dtype="float32").reshape(4, 3)
    (folder / "w").write_bytes(tensor_bytes(w))
    code, err = run(capsys, folder, tmp_path / "new" / "m")
    assert code == 0, err
    layer = paddle.jit.load(str(tmp_path / "new" / "m"))
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(layer(paddle.to_tensor(x)).numpy(), 0.5 * x @ w, atol=1e-6)
    (folder / "w").unlink()
    code, err = run(capsys, folder, tmp_path / "new2" / "m")
    assert code == 2 and "no parameter file for 1 persistable tensors of the program (w)" in err
