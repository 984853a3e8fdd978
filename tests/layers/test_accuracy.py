"""Accuracy: top-k with Caffe 1.0's tie rule, ignore_label, per-class top, against numpy and Caffe."""
import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.errors import ConfigError, DataError
from dist_caffe.layer import create_layer
from dist_caffe.proto import read_net_param
from dist_caffe.testing import assert_cpu_gpu_parity, make_layer, run_layer, setup_layer


def reference(x, labels, top_k=1, axis=1, ignore=None):
    """(accuracy, per-class accuracy): rank each position's (score, class) pairs in descending
    order, as Caffe 1.0's partial_sort with std::greater, and look for the label in the first k."""
    num_classes = x.shape[axis]
    rows = np.moveaxis(x, axis, -1).reshape(-1, num_classes)
    hits, seen = np.zeros(num_classes), np.zeros(num_classes)
    for s, label in zip(rows, labels.ravel().astype(int)):
        if label == ignore:
            continue
        ranked = sorted(range(num_classes), key=lambda c: (s[c], c), reverse=True)
        seen[label] += 1
        hits[label] += label in ranked[:top_k]
    per_class = np.where(seen > 0, hits / np.maximum(seen, 1), 0)
    return hits.sum() / max(seen.sum(), 1), per_class


def data(shape, axis=1, seed=0, ties=False):
    g = np.random.default_rng(seed)
    x = g.integers(0, 3, shape).astype(np.float64) if ties else g.standard_normal(shape)
    labels = g.integers(0, shape[axis], shape[:axis] + shape[axis + 1:]).astype(np.float64)
    return x, labels


@pytest.mark.parametrize("top_k", [1, 2, 4])
@pytest.mark.parametrize("ties", [False, True])
def test_matches_numpy(top_k, ties):
    x, labels = data((20, 5), ties=ties)
    layer = make_layer(f"type: 'Accuracy' top: 'a' top: 'c' accuracy_param {{ top_k: {top_k} }}")
    acc, per_class = run_layer(layer, [x, labels])
    ref_acc, ref_per_class = reference(x, labels, top_k)
    np.testing.assert_allclose(acc, ref_acc, rtol=1e-12)
    np.testing.assert_allclose(per_class, ref_per_class, rtol=1e-12)
    assert per_class.shape == (5,)


def test_spatial_axis_and_ignore_label():
    x, labels = data((2, 4, 3, 5), axis=2, ties=True)
    labels.flat[::4] = 1
    layer = make_layer("type: 'Accuracy' top: 'a' top: 'c' "
                       "accuracy_param { axis: 2 top_k: 2 ignore_label: 1 }")
    acc, per_class = run_layer(layer, [x, labels.reshape(2, 4, 1, 5)])
    ref_acc, ref_per_class = reference(x, labels, 2, axis=2, ignore=1)
    np.testing.assert_allclose(acc, ref_acc, rtol=1e-12)
    np.testing.assert_allclose(per_class, ref_per_class, rtol=1e-12)
    assert per_class[1] == 0


def test_tie_rule_prefers_the_higher_class_index():
    x = np.zeros((3, 4))  # every score tied
    (acc,) = run_layer(make_layer("type: 'Accuracy'"), [x, np.array([3.0, 3.0, 0.0])])
    assert float(acc) == pytest.approx(2 / 3)  # class 3 ranks first; class 0 last
    (acc,) = run_layer(make_layer("type: 'Accuracy' accuracy_param { top_k: 3 }"),
                       [x, np.array([0.0, 1.0, 1.0])])
    assert float(acc) == pytest.approx(2 / 3)  # ranked 3, 2, 1, 0: class 0 is out of the top 3


def test_all_ignored_gives_zero():
    layer = make_layer("type: 'Accuracy' accuracy_param { ignore_label: 2 }")
    (acc,) = run_layer(layer, [np.ones((3, 4)), np.full(3, 2.0)])
    assert float(acc) == 0


def test_has_no_backward():
    layer = make_layer("type: 'Accuracy'")
    assert layer.has_backward is False
    bottom, top = setup_layer(layer, list(data((3, 4))))
    with pytest.raises(ConfigError, match="no backward"):
        layer.backward(top, [True, False], bottom)


def test_bad_configs_name_the_field():
    x, labels = data((3, 4))
    with pytest.raises(ConfigError, match="accuracy_param.top_k.*5.*4 classes"):
        run_layer(make_layer("type: 'Accuracy' accuracy_param { top_k: 5 }"), [x, labels])
    with pytest.raises(ConfigError, match="accuracy_param.axis"):
        run_layer(make_layer("type: 'Accuracy' accuracy_param { axis: 2 }"), [x, labels])
    with pytest.raises(ConfigError, match="bottom.*4 values.*need 3"):
        run_layer(make_layer("type: 'Accuracy'"), [x, np.zeros(4)])
    with pytest.raises(DataError, match="label 4"):
        run_layer(make_layer("type: 'Accuracy'"), [x, np.array([0.0, 4.0, 1.0])])


def test_matches_caffe(conformance):
    case = conformance / "caffe_ref" / "layer_zoo_c"
    if not case.is_dir():
        pytest.skip("caffe_ref/layer_zoo_c is absent")
    layers = {l.name: l for l in read_net_param(str(case / "net.prototxt")).layer}
    inputs, expected = np.load(case / "inputs.npz"), np.load(case / "expected.npz")
    for name, bottoms in (("accuracy_top2", [expected["data/ip_e"], inputs["label"]]),
                          ("accuracy_sp", [inputs["data_sp"], inputs["label_sp"]])):
        (acc,) = run_layer(create_layer(layers[name], dtype=np.float64), bottoms)
        np.testing.assert_allclose(acc, expected[f"data/{name}"], rtol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.has_gpu(), reason="no CUDA GPU")
def test_cpu_gpu_parity():
    x, labels = data((4, 6, 3, 2), ties=True)
    assert_cpu_gpu_parity("type: 'Accuracy' top: 'a' top: 'c' "
                          "accuracy_param { top_k: 2 ignore_label: 5 }",
                          bottoms=[x, labels], rtol=0, atol=0)
