"""Reshape: 0/-1 dims with axis/num_axes, shared data and diff, gradients, errors, BVLC Caffe."""
import numpy as np
import pytest

from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import assert_caffe_close, caffe_layer


def reshape_text(dims, extra=""):
    shape = " ".join(f"dim: {d}" for d in dims)
    return f"type: 'Reshape' reshape_param {{ shape {{ {shape} }} {extra} }}"


BOTTOM = (2, 3, 6, 5)


@pytest.mark.parametrize("dims, extra, shape", [
    ([0, -1], "", (2, 90)),
    ([-1], "", (180,)),
    ([6, 0, -1], "", (6, 3, 10)),
    ([0, 0, 0, 0], "", BOTTOM),
    ([2, 3, 30], "", (2, 3, 30)),
    ([1], "axis: 0 num_axes: 0", (1, 2, 3, 6, 5)),
    ([1], "axis: 1 num_axes: 0", (2, 1, 3, 6, 5)),
    ([1], "axis: -1 num_axes: 0", (2, 3, 6, 5, 1)),
    ([1, 3], "axis: 1 num_axes: 1", (2, 1, 3, 6, 5)),
    ([-1], "axis: 1 num_axes: 2", (2, 18, 5)),
    ([0, -1], "axis: 2", (2, 3, 6, 5)),
    ([5, 1], "axis: -2", (2, 3, 6, 5, 1)),
    ([], "axis: 1 num_axes: 0", BOTTOM),
])
def test_reshape_shape_and_values(dims, extra, shape):
    x = np.random.default_rng(0).standard_normal(BOTTOM)
    (y,) = run_layer(make_layer(reshape_text(dims, extra)), [x])
    assert y.shape == shape
    np.testing.assert_array_equal(y.ravel(), x.ravel())


def test_reshape_infers_again_when_the_bottom_changes():
    layer = make_layer(reshape_text([0, -1]))
    bottom, top = setup_layer(layer, [np.zeros(BOTTOM)])
    bottom[0].reshape(4, 3, 2)
    layer.reshape(bottom, top)
    assert top[0].shape == (4, 6)


def test_reshape_shares_data_and_diff_with_the_bottom():
    x = np.random.default_rng(1).standard_normal((2, 6))
    layer = make_layer(reshape_text([0, 2, 3]))
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, x.reshape(2, 2, 3))
    top[0].diff[...] = np.arange(12).reshape(2, 2, 3)
    layer.backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, np.arange(12).reshape(2, 6))


@pytest.mark.parametrize("dims, extra", [([0, -1], ""), ([3, 2], "axis: 1 num_axes: 1")])
def test_reshape_gradient(dims, extra):
    check_gradient(make_layer(reshape_text(dims, extra)), bottom_shapes=[(2, 6, 3)])


@pytest.mark.parametrize("dims, extra, field", [
    ([-1, -1], "", r"reshape_param\.shape.*at most one -1"),
    ([7, -1], "", r"reshape_param\.shape.*not divisible"),
    ([2, 2], "", r"reshape_param\.shape.*counts must match"),
    ([0, 0, 0, 0, 0], "", r"reshape_param\.shape.*no axis 4"),
    ([-2, 90], "", r"reshape_param\.shape"),
    ([1], "axis: 5", r"reshape_param\.axis"),
    ([1], "axis: -6", r"reshape_param\.axis"),
    ([1], "num_axes: -2", r"reshape_param\.num_axes"),
    ([1], "axis: 2 num_axes: 3", r"reshape_param\.num_axes"),
])
def test_reshape_bad_config_names_field(dims, extra, field):
    with pytest.raises(ConfigError, match=field):
        setup_layer(make_layer(reshape_text(dims, extra)), [np.zeros(BOTTOM)])


def test_reshape_in_place_is_a_config_error():
    blob = Blob((2, 3), np.float64)
    with pytest.raises(ConfigError, match="top"):
        make_layer(reshape_text([-1])).setup([blob], [blob])


def test_reshape_matches_bvlc_caffe(conformance):
    layer, ref = caffe_layer(conformance, "layer_zoo_b", "reshape")
    b, t = setup_layer(layer, [ref["data/slice_c"]])
    layer.forward(b, t)
    t[0].diff[...] = ref["diff/reshape"]
    layer.backward(t, [True], b)
    assert_caffe_close(t[0].data, ref["data/reshape"])
    assert_caffe_close(b[0].diff, ref["diff/slice_c"])


@pytest.mark.gpu
def test_reshape_cpu_gpu_parity():
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    assert_cpu_gpu_parity(reshape_text([0, -1, 2]), bottoms=[x], rtol=1e-10, atol=1e-12)
