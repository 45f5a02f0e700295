"""Caffe: regenerated caffe_pb2 (R3), random .caffemodel, torch reference of Caffe layers."""

from __future__ import annotations

import caffe_models
import numpy as np
import pytest
from harness import ATOL, RTOL

import x2paddle_compat as xc
from x2paddle_compat.verify import verify


@pytest.mark.parametrize("net", sorted(caffe_models.SMALL_NETS))
def test_caffe_net(net, tmp_path):
    proto, weights, parsed, blobs = caffe_models.write_net(net, tmp_path / "src")
    out = xc.convert_caffe(proto, weights, tmp_path / "paddle")
    shape = caffe_models._input_shape(parsed)[0]
    x = np.random.default_rng(1).standard_normal(shape).astype("float32")
    refs = caffe_models.reference(parsed, blobs, x)
    from x2paddle_compat.verify import input_names

    report = verify(out, {input_names(out)[0]: x}, refs, atol=ATOL, rtol=RTOL)
    assert report.ok, report.table()


def test_r13_caffe_batchnorm_onednn(tmp_path):
    """Caffe BatchNorm without affine: the oneDNN predictor fails unless the emitter writes
    explicit scale/shift parameters (caffe-bn-affine); either way the result is verified."""
    proto, weights, parsed, blobs = caffe_models.write_net(
        "conv_bn_scale_pool_fc", tmp_path / "src"
    )
    shape = caffe_models._input_shape(parsed)[0]
    x = np.random.default_rng(1).standard_normal(shape).astype("float32")
    refs = caffe_models.reference(parsed, blobs, x)
    from x2paddle_compat.verify import input_names

    def run(name):
        out = xc.convert_caffe(proto, weights, tmp_path / name)
        return verify(out, {input_names(out)[0]: x}, refs, atol=ATOL, rtol=RTOL)

    with xc.without_fix("caffe-bn-affine"):
        report = run("without")
    assert report.ok and not report.results["predictor+onednn"].ok, report.table()
    assert report.predictor_config["use_onednn"] is False
    report = run("with")
    assert report.ok and report.results["predictor+onednn"].ok, report.table()
    assert report.predictor_config["use_onednn"] is True
