"""SigmoidCrossEntropyLoss: stable sigmoid + cross-entropy, normalisations, ignore_label."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


def reference(x, t, ignore=None, mode="BATCH_SIZE"):
    p = 1 / (1 + np.exp(-x))
    valid = np.ones(x.shape, bool) if ignore is None else t != ignore
    loss = -np.where(valid, t * np.log(p) + (1 - t) * np.log(1 - p), 0).sum()
    norm = {"BATCH_SIZE": x.shape[0], "FULL": x.size, "VALID": valid.sum(), "NONE": 1}[mode]
    return loss / max(norm, 1)


def data(seed=0):
    g = np.random.default_rng(seed)
    return g.standard_normal((3, 4, 2)) * 2, g.integers(0, 2, (3, 4, 2)).astype(float)


def test_sigmoid_cross_entropy_divides_by_batch_size_by_default():
    x, t = data()
    (loss,) = run_layer(make_layer("type: 'SigmoidCrossEntropyLoss'"), [x, t])
    np.testing.assert_allclose(loss, reference(x, t), rtol=1e-12)


@pytest.mark.parametrize("mode", ["FULL", "VALID", "BATCH_SIZE", "NONE"])
def test_sigmoid_cross_entropy_ignore_label_and_normalization(mode):
    x, t = data(1)
    t[0, 0] = 5
    text = f"type: 'SigmoidCrossEntropyLoss' loss_param {{ ignore_label: 5 normalization: {mode} }}"
    (loss,) = run_layer(make_layer(text), [x, t])
    np.testing.assert_allclose(loss, reference(x, t, 5, mode), rtol=1e-12)


def test_sigmoid_cross_entropy_is_stable_for_large_scores():
    x, t = np.array([[800.0, -800.0]]), np.array([[0.0, 1.0]])
    (loss,) = run_layer(make_layer("type: 'SigmoidCrossEntropyLoss'"), [x, t])
    np.testing.assert_allclose(loss, 1600.0)


@pytest.mark.parametrize("param", ["", "loss_param { ignore_label: 5 normalization: VALID }",
                                   "loss_param { normalize: false }"])
def test_sigmoid_cross_entropy_gradient(param):
    x, t = data(2)
    t[1, 1] = 5
    layer = make_layer(f"type: 'SigmoidCrossEntropyLoss' loss_weight: 1.3 {param}")
    check_gradient(layer, bottoms=[x, t], check_bottom=[0])


def test_sigmoid_cross_entropy_optional_top_is_sigmoid():
    x, t = data(3)
    _, p = run_layer(make_layer("type: 'SigmoidCrossEntropyLoss'"), [x, t], num_top=2)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-x)))


def test_sigmoid_cross_entropy_bad_input_names_field():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'SigmoidCrossEntropyLoss'"), [np.ones((3, 4)), np.ones((3, 5))])
    layer = make_layer("type: 'SigmoidCrossEntropyLoss'")
    bottom, top = setup_layer(layer, list(data()))
    with pytest.raises(ConfigError, match="propagate_down"):
        layer.backward(top, [True, True], bottom)


@pytest.mark.gpu
def test_sigmoid_cross_entropy_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'SigmoidCrossEntropyLoss' loss_param { ignore_label: 1 }",
                          bottoms=list(data(4)), propagate_down=[True, False])
