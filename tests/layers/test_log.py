"""Log: log_base(shift + scale x)."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import run_in_place


CASES = [(-1, 1, 0), (10, 2, 0.5), (2, 0.5, 3), (-1, -1, 4)]


def log_text(base, scale, shift):
    return f"type: 'Log' log_param {{ base: {base} scale: {scale} shift: {shift} }}"


def in_domain(shape):
    return np.random.default_rng(6).uniform(0.2, 2.0, shape)


@pytest.mark.parametrize("base, scale, shift", CASES)
def test_log_forward_matches_numpy(base, scale, shift):
    x = in_domain((2, 3, 4))
    (y,) = run_layer(make_layer(log_text(base, scale, shift)), [x])
    b, s, t = (float(np.float32(v)) for v in (base, scale, shift))
    ref = np.log(t + s * x) / (1.0 if base == -1 else np.log(b))
    np.testing.assert_allclose(y, ref, rtol=1e-12)


@pytest.mark.parametrize("base, scale, shift", CASES)
def test_log_gradient(base, scale, shift):
    check_gradient(make_layer(log_text(base, scale, shift)), bottom_shapes=[(2, 3, 4)], fill=in_domain)


def test_log_in_place_gradient():
    x = in_domain((6,))
    blob = run_in_place(log_text(-1, 1, 0), x, 1)
    np.testing.assert_allclose(blob.diff, 1 / x)


@pytest.mark.parametrize("base", [0, -3])
def test_log_bad_base_names_field(base):
    with pytest.raises(ConfigError, match="log_param.base"):
        setup_layer(make_layer(log_text(base, 1, 0)), [np.ones(3)])


@pytest.mark.gpu
def test_log_cpu_gpu_parity():
    assert_cpu_gpu_parity(log_text(10, 2, 0.5), bottoms=[in_domain((2, 3, 4))])
