import pytest

from paddle_op_migrator.errors import MigratorError
from paddle_op_migrator.lists import candidate_ops, load_list


def test_builtin_lists_are_verbatim_with_rows_and_duplicates():
    t1, t2 = load_list("task1"), load_list("task2")
    assert len(t1) == 105 and len(t2) == 115
    assert len({e.name for e in t1}) == 66 and len({e.name for e in t2}) == 58
    assert [e.row for e in t1] == list(range(1, 106))
    # upstream PR titles cite raw rows: "FP1 No.95-96" = save, save_sr; "FP2 No.89" = number_count
    assert (t1[94].name, t1[95].name) == ("save", "save_sr")
    assert t2[88].name == "number_count"
    # the tail of list 2 is the custom-device registry file, in order
    assert [e.name for e in t2[71:76]] == [
        "save_combine",
        "load_combine",
        "c_concat",
        "c_split",
        "c_embedding",
    ]
    assert len(load_list("all")) == 220


def test_list_file_and_bad_names(tmp_path):
    f = tmp_path / "l.txt"
    f.write_text("# mine\nnce, crop\nfoo_grad\n")
    assert [e.name for e in load_list(str(f))] == ["nce", "crop", "foo_grad"]
    f.write_text("nce, not-a-name\n")
    with pytest.raises(MigratorError, match="l.txt:1"):
        load_list(str(f))
    with pytest.raises(MigratorError, match="neither"):
        load_list(str(tmp_path / "missing.txt"))


def test_candidate_ops_strip_grad_and_kernel_suffixes():
    assert candidate_ops("matmul_grad_grad")[1] == "matmul"
    assert "save_combine" in candidate_ops("save_combine_tensor")
    assert "feed" in candidate_ops("feed_sparse_coo_tensor")
    assert "sync_batch_norm" in candidate_ops("sync_batch_norm_coo")
