"""SoftmaxWithLoss: loss and gradient against numpy and BVLC Caffe for every normalization."""
import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.errors import ConfigError, DataError
from dist_caffe.layer import create_layer
from dist_caffe.proto import read_net_param
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

FLT_MIN = 1.1754943508222875e-38


def reference(x, labels, axis=1, ignore=None, mode="VALID"):
    """(loss, d loss / d x) by looping over the positions, with the class axis moved last."""
    rows = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
    grads, loss, valid = np.zeros_like(rows), 0.0, 0
    for r, (s, label) in enumerate(zip(rows, labels.ravel().astype(int))):
        if label == ignore:
            continue
        p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        loss -= np.log(max(p[label], FLT_MIN))
        grads[r] = p
        grads[r, label] -= 1
        valid += 1
    outer = int(np.prod(x.shape[:axis]))
    norm = max(1, {"FULL": rows.shape[0], "VALID": valid, "BATCH_SIZE": outer, "NONE": 1}[mode])
    moved_shape = np.moveaxis(x, axis, -1).shape
    return loss / norm, np.moveaxis(grads.reshape(moved_shape), -1, axis) / norm


def scores_and_labels(shape, axis=1, seed=0, ignore=None):
    g = np.random.default_rng(seed)
    x = g.standard_normal(shape) * 2
    label_shape = shape[:axis] + shape[axis + 1:]
    labels = g.integers(0, shape[axis], label_shape).astype(np.float64)
    if ignore is not None:
        labels.flat[::3] = ignore
    return x, labels


def forward_backward(layer, x, labels, weight=1.0, num_top=None):
    bottom, top = setup_layer(layer, [x, labels], num_top)
    layer.forward(bottom, top)
    top[0].diff[...] = weight
    layer.backward(top, [True, False], bottom)
    return top, bottom[0].diff.copy()


@pytest.mark.parametrize("mode", ["VALID", "FULL", "BATCH_SIZE", "NONE"])
@pytest.mark.parametrize("ignore", [None, 2])
def test_loss_and_gradient_match_numpy(mode, ignore):
    x, labels = scores_and_labels((3, 4, 2, 3), ignore=ignore)
    ignore_text = "" if ignore is None else f"ignore_label: {ignore}"
    layer = make_layer(f"type: 'SoftmaxWithLoss' loss_param {{ normalization: {mode} {ignore_text} }}")
    top, dx = forward_backward(layer, x, labels, weight=0.7)
    loss, grad = reference(x, labels, ignore=ignore, mode=mode)
    np.testing.assert_allclose(top[0].data, loss, rtol=1e-12)
    np.testing.assert_allclose(dx, 0.7 * grad, rtol=1e-10, atol=1e-15)


def test_ignored_positions_get_zero_gradient_even_with_out_of_range_ignore_label():
    x, labels = scores_and_labels((4, 3), ignore=255)
    layer = make_layer("type: 'SoftmaxWithLoss' loss_param { ignore_label: 255 }")
    top, dx = forward_backward(layer, x, labels)
    assert np.all(dx[labels == 255] == 0) and np.all(dx[labels != 255] != 0)
    np.testing.assert_allclose(top[0].data, reference(x, labels, ignore=255)[0], rtol=1e-12)


@pytest.mark.parametrize("normalize, mode", [("true", "VALID"), ("false", "BATCH_SIZE")])
def test_legacy_normalize_flag(normalize, mode):
    x, labels = scores_and_labels((2, 5, 3), ignore=1)
    layer = make_layer(f"type: 'SoftmaxWithLoss' loss_param {{ ignore_label: 1 normalize: {normalize} }}")
    (loss,) = run_layer(layer, [x, labels])
    np.testing.assert_allclose(loss, reference(x, labels, ignore=1, mode=mode)[0], rtol=1e-12)
    # An explicit normalization wins over the legacy flag.
    layer = make_layer("type: 'SoftmaxWithLoss' loss_param { normalize: false normalization: FULL }")
    (loss,) = run_layer(layer, [x, labels])
    np.testing.assert_allclose(loss, reference(x, labels, mode="FULL")[0], rtol=1e-12)


def test_axis_2_on_4d_input_and_label_shapes():
    x, labels = scores_and_labels((2, 3, 4, 2), axis=2)
    layer = make_layer("type: 'SoftmaxWithLoss' softmax_param { axis: 2 }")
    top, dx = forward_backward(layer, x, labels.reshape(2, 3, 1, 2))
    loss, grad = reference(x, labels, axis=2)
    np.testing.assert_allclose(top[0].data, loss, rtol=1e-12)
    np.testing.assert_allclose(dx, grad, rtol=1e-10, atol=1e-15)
    x2, labels2 = scores_and_labels((5, 4))
    for shaped in (labels2, labels2.reshape(5, 1, 1, 1)):
        (loss2,) = run_layer(make_layer("type: 'SoftmaxWithLoss'"), [x2, shaped])
        np.testing.assert_allclose(loss2, reference(x2, labels2)[0], rtol=1e-12)


def test_second_top_is_the_probability():
    x, labels = scores_and_labels((3, 4, 2))
    layer = make_layer("type: 'SoftmaxWithLoss' top: 'loss' top: 'prob'")
    loss, prob = run_layer(layer, [x, labels])
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(prob, e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    assert layer.loss_weights == [1.0, 0.0]


def test_probability_is_clamped_at_flt_min():
    x = np.array([[0.0, 800.0], [0.0, 0.0]])  # p[label 0] of row 0 underflows to 0
    (loss,) = run_layer(make_layer("type: 'SoftmaxWithLoss'"), [x, np.array([0.0, 0.0])])
    np.testing.assert_allclose(loss, (-np.log(FLT_MIN) + np.log(2)) / 2, rtol=1e-12)


def test_all_ignored_gives_zero_loss_and_gradient():
    x = np.random.default_rng(0).standard_normal((3, 4))
    layer = make_layer("type: 'SoftmaxWithLoss' loss_param { ignore_label: 1 }")
    top, dx = forward_backward(layer, x, np.ones(3))
    assert float(top[0].data) == 0 and not dx.any()


CONFIGS = ["loss_param { normalization: VALID }", "loss_param { normalization: FULL }",
           "loss_param { normalization: BATCH_SIZE }", "loss_param { normalization: NONE }",
           "loss_param { ignore_label: 0 }", "loss_param { normalize: false ignore_label: 3 }"]


@pytest.mark.parametrize("config", CONFIGS)
def test_gradient(config):
    ignore = 0 if "ignore_label: 0" in config else None
    x, labels = scores_and_labels((2, 4, 3), ignore=ignore)
    layer = make_layer(f"type: 'SoftmaxWithLoss' {config}")
    check_gradient(layer, bottoms=[x, labels], check_bottom=[0], step=1e-6, threshold=1e-6)


@pytest.mark.parametrize("mode", ["VALID", "FULL"])
def test_gradient_axis_2_on_4d_input_with_ignore(mode):
    x, labels = scores_and_labels((2, 3, 4, 2), axis=2, ignore=1)
    layer = make_layer("type: 'SoftmaxWithLoss' softmax_param { axis: 2 } "
                       f"loss_param {{ ignore_label: 1 normalization: {mode} }}")
    check_gradient(layer, bottoms=[x, labels], check_bottom=[0], step=1e-6, threshold=1e-6)


def test_label_out_of_range_is_a_data_error_with_the_value():
    x, labels = scores_and_labels((3, 4))
    labels[1] = 7
    with pytest.raises(DataError, match=r"label 7 .*\[0, 3\]"):
        run_layer(make_layer("type: 'SoftmaxWithLoss'"), [x, labels])
    labels[1] = -1
    with pytest.raises(DataError, match="label -1"):
        run_layer(make_layer("type: 'SoftmaxWithLoss'"), [x, labels])


def test_bad_configs_name_the_field():
    x, labels = scores_and_labels((2, 3, 4))
    with pytest.raises(ConfigError, match="bottom.*6 values.*need 8"):
        run_layer(make_layer("type: 'SoftmaxWithLoss'"), [x, np.zeros((2, 3))])
    with pytest.raises(ConfigError, match="softmax_param.axis"):
        run_layer(make_layer("type: 'SoftmaxWithLoss' softmax_param { axis: 3 }"), [x, labels])
    layer = make_layer("type: 'SoftmaxWithLoss'")
    bottom, top = setup_layer(layer, [x, labels])
    layer.forward(bottom, top)
    with pytest.raises(ConfigError, match="propagate_down.*label"):
        layer.backward(top, [True, True], bottom)
    assert not layer.allow_force_backward(1) and layer.allow_force_backward(0)


def _caffe_case(conformance):
    case = conformance / "caffe_ref" / "layer_zoo_c"
    if not case.is_dir():
        pytest.skip("caffe_ref/layer_zoo_c is absent")
    layers = {l.name: l for l in read_net_param(str(case / "net.prototxt")).layer}
    return layers, np.load(case / "inputs.npz"), np.load(case / "expected.npz")


def test_matches_caffe(conformance):
    layers, inputs, expected = _caffe_case(conformance)
    x, labels = inputs["data_sp"].astype(np.float64), inputs["label_sp"].astype(np.float64)
    dx = np.zeros_like(x)
    for name, weight in (("softmax_loss_sp", 1.0), ("softmax_loss_full", 0.25)):
        layer = create_layer(layers[name], dtype=np.float64)
        top, grad = forward_backward(layer, x, labels, weight=weight)
        np.testing.assert_allclose(top[0].data, expected[f"data/{name}"], rtol=1e-5)
        dx += grad
    # data_sp feeds the two losses and an Accuracy: its diff is the sum of the losses' gradients.
    np.testing.assert_allclose(dx, expected["diff/data_sp"], rtol=1e-4, atol=1e-7)
    plain = create_layer(layers["softmax_loss_plain"], dtype=np.float64)
    (loss,) = run_layer(plain, [expected["data/ip_e"], inputs["label"]])
    np.testing.assert_allclose(loss, expected["data/softmax_loss_plain"], rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.has_gpu(), reason="no CUDA GPU")
def test_cpu_gpu_parity():
    x, labels = scores_and_labels((3, 5, 2, 2), ignore=4)
    assert_cpu_gpu_parity("type: 'SoftmaxWithLoss' top: 'l' top: 'p' "
                          "loss_param { ignore_label: 4 }",
                          bottoms=[x, labels], propagate_down=[True, False], rtol=1e-10, atol=1e-12)
