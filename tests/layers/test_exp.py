"""Exp: base ^ (shift + scale x)."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


CASES = [(-1, 1, 0), (2, 0.5, 0.1), (-1, -0.3, 0), (10, 1, -1)]


def exp_text(base, scale, shift):
    return f"type: 'Exp' exp_param {{ base: {base} scale: {scale} shift: {shift} }}"


@pytest.mark.parametrize("base, scale, shift", CASES)
def test_exp_forward_matches_numpy(base, scale, shift):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    (y,) = run_layer(make_layer(exp_text(base, scale, shift)), [x])
    b, s, t = (float(np.float32(v)) for v in (base, scale, shift))
    ref = np.exp(s * x + t) if base == -1 else b ** (t + s * x)
    np.testing.assert_allclose(y, ref, rtol=1e-12)


@pytest.mark.parametrize("base, scale, shift", CASES)
def test_exp_gradient(base, scale, shift):
    check_gradient(make_layer(exp_text(base, scale, shift)), bottom_shapes=[(2, 3, 4)])


@pytest.mark.parametrize("base", [0, -2])
def test_exp_bad_base_names_field(base):
    with pytest.raises(ConfigError, match="exp_param.base"):
        setup_layer(make_layer(exp_text(base, 1, 0)), [np.ones(3)])


@pytest.mark.gpu
def test_exp_cpu_gpu_parity():
    assert_cpu_gpu_parity(exp_text(2, 0.5, 0.1),
                          bottoms=[np.random.default_rng(2).standard_normal((2, 3, 4))])
