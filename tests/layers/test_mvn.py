"""MVN: mean (and variance) normalisation per item/channel."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


VARIANTS = [(True, False), (True, True), (False, False), (False, True)]


def mvn_text(normalize_variance, across_channels, eps=1e-9):
    return (f"type: 'MVN' mvn_param {{ normalize_variance: {str(normalize_variance).lower()} "
            f"across_channels: {str(across_channels).lower()} eps: {eps} }}")


@pytest.mark.parametrize("normalize_variance, across_channels", VARIANTS)
def test_mvn_forward_matches_numpy(normalize_variance, across_channels):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)) * 3 + 1
    (y,) = run_layer(make_layer(mvn_text(normalize_variance, across_channels, 1e-3)), [x])
    axes = (1, 2, 3) if across_channels else (2, 3)
    ref = x - x.mean(axis=axes, keepdims=True)
    if normalize_variance:
        ref /= x.std(axis=axes, keepdims=True) + np.float32(1e-3)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("normalize_variance, across_channels", VARIANTS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 6)])
def test_mvn_gradient(normalize_variance, across_channels, shape):
    # Caffe's backward leaves eps out of the variance term: exact up to ~eps.
    check_gradient(make_layer(mvn_text(normalize_variance, across_channels)), bottom_shapes=[shape],
                   threshold=1e-6)


def test_mvn_bad_config_names_field():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'MVN'"), [np.ones((2, 3)), np.ones((2, 3))])


@pytest.mark.gpu
@pytest.mark.parametrize("normalize_variance, across_channels", VARIANTS)
def test_mvn_cpu_gpu_parity(normalize_variance, across_channels):
    assert_cpu_gpu_parity(mvn_text(normalize_variance, across_channels),
                          bottoms=[np.random.default_rng(2).standard_normal((2, 3, 4, 5))])
