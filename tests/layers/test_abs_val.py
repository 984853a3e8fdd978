"""AbsVal: |x|, gradient sign(x) dy, in place."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import run_in_place


def test_abs_val_forward_matches_numpy():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    (y,) = run_layer(make_layer("type: 'AbsVal'"), [x])
    np.testing.assert_array_equal(y, np.abs(x))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7,)])
def test_abs_val_gradient(shape):
    check_gradient(make_layer("type: 'AbsVal'"), bottom_shapes=[shape], kink=0.0)


def test_abs_val_in_place_keeps_input_for_backward():
    g = np.random.default_rng(1)
    x, dy = g.standard_normal((3, 4)), g.standard_normal((3, 4))
    blob = run_in_place("type: 'AbsVal'", x, dy)
    np.testing.assert_array_equal(blob.data, np.abs(x))
    np.testing.assert_array_equal(blob.diff, np.sign(x) * dy)


def test_abs_val_bad_config_names_field():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'AbsVal'"), [np.zeros(3), np.zeros(3)])


@pytest.mark.gpu
def test_abs_val_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'AbsVal'",
                          bottoms=[np.random.default_rng(2).standard_normal((2, 3, 4))])
