"""Outputs written by BVLC Caffe itself (../shared/conformance/caffe_ref) must be reproduced."""
import numpy as np
import pytest

from dist_caffe import TRAIN, Net, backend, onednn
from dist_caffe.testing.caffe_ref import compare, run_forward_backward

CASES = ["lenet_forward_backward", "cifar10_quick_forward_backward"]


@pytest.mark.parametrize("case", CASES)
def test_forward_backward_matches_caffe(conformance, case):
    case_dir = conformance / "caffe_ref" / case
    actual, meta, net = run_forward_backward(case_dir)
    expected = np.load(case_dir / "expected.npz")
    problems = compare(actual, expected, meta)
    assert not problems, "\n".join(problems)
    assert net.loss == pytest.approx(meta["total_loss"], rel=1e-5)
    # which engine ran each convolution: oneDNN from 32 input channels per group (CIFAR's
    # conv2/conv3) on one thread, all on more; numpy for all without the library
    engines = {l.name: l._plan is not None for l in net.layers if l.type == "Convolution"}
    want = {"cifar10_quick_forward_backward": {"conv1": False, "conv2": True, "conv3": True},
            "lenet_forward_backward": {"conv1": False, "conv2": False}}[case]
    assert engines == {k: onednn.available() and (v or onednn.threads() > 1)
                       for k, v in want.items()}


def test_v1_caffemodel_with_current_prototxt(conformance):
    case_dir = conformance / "caffe_ref" / "caffemodel_v1"
    actual, meta, net = run_forward_backward(case_dir, "net.prototxt", "lenet_v1.caffemodel")
    assert not compare(actual, np.load(case_dir / "expected.npz"), meta)
    assert net.params["ip1"][0].shape == (500, 800) and net.params["conv1"][1].shape == (20,)


def test_v1_prototxt_and_v1_caffemodel(conformance):
    case_dir = conformance / "caffe_ref" / "caffemodel_v1"
    actual, meta, _ = run_forward_backward(case_dir, "lenet_v1.prototxt", "lenet_v1.caffemodel")
    expected = np.load(case_dir / "expected.npz")
    assert not compare(actual, expected, meta)
    for key in expected.files:
        if key.startswith("param/"):  # loading must be exact
            np.testing.assert_array_equal(actual[key], expected[key])


def test_input_dim_net_equals_its_upgraded_form(conformance):
    case_dir = conformance / "caffe_ref" / "caffemodel_v1"
    old = Net(str(case_dir / "lenet_v1.prototxt"), TRAIN)
    new = Net(str(case_dir / "lenet_v1_upgraded_by_caffe.prototxt"), TRAIN)
    assert list(old.layer_dict) == list(new.layer_dict)
    assert {n: b.shape for n, b in old.blobs.items()} == {n: b.shape for n, b in new.blobs.items()}


@pytest.mark.gpu
@pytest.mark.parametrize("case", CASES + ["layer_zoo_a", "layer_zoo_b", "layer_zoo_c",
                                          "layer_zoo_d"])
def test_caffe_ref_cases_on_the_gpu(conformance, case):
    case_dir = conformance / "caffe_ref" / case
    backend.set_mode_gpu()
    try:
        actual, meta, _ = run_forward_backward(case_dir)
    finally:
        backend.set_mode_cpu()
    problems = compare(actual, np.load(case_dir / "expected.npz"), meta)
    assert not problems, "\n".join(problems)
