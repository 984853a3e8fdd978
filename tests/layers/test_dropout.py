"""Dropout: the TRAIN mask and scale, TEST identity, seeding, gradients, bad ratio, GPU parity."""
import numpy as np
import pytest

from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.layer import TEST, TRAIN
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


def dropout_text(ratio):
    return f"type: 'Dropout' dropout_param {{ dropout_ratio: {ratio} }}"


@pytest.mark.parametrize("ratio", [0.5, 0.2])
def test_dropout_train_forward_keeps_and_scales(ratio):
    x = np.random.default_rng(0).uniform(1, 2, (40, 50))
    (y,) = run_layer(make_layer(dropout_text(ratio)), [x], seed=5)
    kept = y != 0
    scale = 1 / (1 - np.float32(ratio).item())
    np.testing.assert_allclose(y[kept], x[kept] * scale, rtol=1e-15)
    assert abs(kept.mean() - (1 - ratio)) < 0.03  # 2000 draws: ~5 sigma
    (again,) = run_layer(make_layer(dropout_text(ratio)), [x], seed=5)
    np.testing.assert_array_equal(y, again)  # the same seed draws the same mask
    (other,) = run_layer(make_layer(dropout_text(ratio)), [x], seed=6)
    assert (other != y).any()


def test_dropout_train_backward_uses_the_forward_mask():
    g = np.random.default_rng(1)
    x, dy = g.uniform(1, 2, (6, 7)), g.standard_normal((6, 7))
    layer = make_layer(dropout_text(0.5))
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    top[0].diff[...] = dy
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, dy * top[0].data / x, rtol=1e-14)


def test_dropout_test_phase_is_identity():
    x, dy = np.random.default_rng(2).standard_normal((2, 2, 3, 4))
    layer = make_layer(dropout_text(0.7), phase=TEST)
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    top[0].diff[...] = dy
    layer.backward(top, [True], bottom)
    np.testing.assert_array_equal(top[0].data, x)
    np.testing.assert_array_equal(bottom[0].diff, dy)


def test_dropout_ratio_zero_is_identity_in_train():
    x = np.random.default_rng(3).standard_normal((5, 6))
    (y,) = run_layer(make_layer(dropout_text(0.0)), [x])
    np.testing.assert_array_equal(y, x)


def test_dropout_in_place():
    x = np.random.default_rng(4).uniform(1, 2, (8, 9))
    blob = Blob(x.shape, np.float64)
    blob.data[...], layer = x, make_layer(dropout_text(0.5))
    layer.setup([blob], [blob])
    layer.forward([blob], [blob])
    y = blob.data.copy()
    blob.diff[...] = 1
    layer.backward([blob], [True], [blob])
    np.testing.assert_allclose(blob.diff, y / x, rtol=1e-14)
    assert set(np.unique(np.round(blob.diff, 12))) == {0.0, 2.0}


@pytest.mark.parametrize("phase", [TRAIN, TEST])
@pytest.mark.parametrize("ratio", [0.5, 0.3])
def test_dropout_gradient(phase, ratio):
    check_gradient(make_layer(dropout_text(ratio), phase=phase), bottom_shapes=[(2, 3, 4, 5)])


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5])
def test_dropout_bad_ratio_names_field(ratio):
    with pytest.raises(ConfigError, match=r"dropout_param\.dropout_ratio"):
        setup_layer(make_layer(dropout_text(ratio)), [np.zeros((2, 3))])


@pytest.mark.gpu
@pytest.mark.parametrize("phase", [TRAIN, TEST])
def test_dropout_cpu_gpu_parity(phase):
    # The mask comes from the host generator, so both devices drop the same elements.
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5))
    assert_cpu_gpu_parity(dropout_text(0.4), phase=phase, bottoms=[x], rtol=1e-10, atol=1e-12)
