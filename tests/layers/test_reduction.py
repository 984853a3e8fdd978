"""Reduction: SUM, ASUM, SUMSQ, MEAN over the trailing axes."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


REFS = {"SUM": lambda v: v.sum(-1), "ASUM": lambda v: np.abs(v).sum(-1),
        "SUMSQ": lambda v: (v * v).sum(-1), "MEAN": lambda v: v.mean(-1)}


def reduction_text(op, axis, coeff=1.0):
    return f"type: 'Reduction' reduction_param {{ operation: {op} axis: {axis} coeff: {coeff} }}"


@pytest.mark.parametrize("op", sorted(REFS))
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_reduction_forward_matches_numpy(op, axis):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    (y,) = run_layer(make_layer(reduction_text(op, axis, 0.5)), [x])
    a = axis % 3
    assert y.shape == x.shape[:a]   # axis 0 gives a 0-D blob
    np.testing.assert_allclose(y, 0.5 * REFS[op](x.reshape(x.shape[:a] + (-1,))), rtol=1e-12)


def test_reduction_default_is_sum_over_everything():
    x = np.arange(6.0).reshape(2, 3)
    (y,) = run_layer(make_layer("type: 'Reduction'"), [x])
    assert y.shape == () and y == 15


@pytest.mark.parametrize("op", sorted(REFS))
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_reduction_gradient(op, axis):
    check_gradient(make_layer(reduction_text(op, axis, -0.7)), bottom_shapes=[(2, 3, 4)],
                   kink=0.0 if op == "ASUM" else None)


@pytest.mark.parametrize("axis", [3, -4])
def test_reduction_axis_out_of_range_names_field(axis):
    with pytest.raises(ConfigError, match="reduction_param.axis"):
        setup_layer(make_layer(reduction_text("SUM", axis)), [np.ones((2, 3, 4))])


@pytest.mark.gpu
@pytest.mark.parametrize("op", sorted(REFS))
def test_reduction_cpu_gpu_parity(op):
    assert_cpu_gpu_parity(reduction_text(op, 1, 0.5),
                          bottoms=[np.random.default_rng(2).standard_normal((2, 3, 4))])
