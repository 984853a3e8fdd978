"""Slice: slice_point and equal pieces on several axes, gradients, bad configs, BVLC Caffe."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import assert_caffe_close, caffe_layer


def slice_text(body):
    return f"type: 'Slice' slice_param {{ {body} }}"


@pytest.mark.parametrize("body, axis, points", [
    ("slice_point: 1 slice_point: 4", 1, [1, 4]),
    ("axis: 0 slice_point: 1", 0, [1]),
    ("axis: 2 slice_point: 2 slice_point: 3", 2, [2, 3]),
    ("axis: -1 slice_point: 4", 3, [4]),
    ("slice_dim: 2 slice_point: 1 slice_point: 3", 2, [1, 3]),
])
def test_slice_forward_matches_numpy(body, axis, points):
    x = np.random.default_rng(0).standard_normal((2, 6, 4, 5))
    tops = run_layer(make_layer(slice_text(body)), [x], num_top=len(points) + 1)
    for y, ref in zip(tops, np.split(x, points, axis=axis), strict=True):
        np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("axis, n", [(1, 3), (0, 2), (2, 4)])
def test_slice_equal_pieces(axis, n):
    x = np.random.default_rng(1).standard_normal((2, 6, 4))
    tops = run_layer(make_layer(slice_text(f"axis: {axis}")), [x], num_top=n)
    for y, ref in zip(tops, np.split(x, n, axis=axis), strict=True):
        np.testing.assert_array_equal(y, ref)


def test_slice_backward_joins_the_top_diffs():
    x = np.random.default_rng(2).standard_normal((3, 5))
    layer = make_layer(slice_text("slice_point: 2"))
    bottom, top = setup_layer(layer, [x], num_top=2)
    layer.forward(bottom, top)
    top[0].diff[...], top[1].diff[...] = 1.0, 2.0
    layer.backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, np.repeat([[1.0, 1, 2, 2, 2]], 3, axis=0))


@pytest.mark.parametrize("axis, body", [(0, "slice_point: 1"), (1, "slice_point: 1 slice_point: 3"),
                                        (2, ""), (-1, "slice_point: 2")])
def test_slice_gradient(axis, body):
    layer = make_layer(slice_text(f"axis: {axis} {body}"))
    num_top = len(layer.param.slice_param.slice_point) + 1 if body else 2
    check_gradient(layer, bottom_shapes=[(3, 4, 4)], num_top=num_top)


@pytest.mark.parametrize("body, num_top, field", [
    ("slice_point: 1 slice_point: 2", 2, r"slice_param\.slice_point.*2 points for 2 tops"),
    ("slice_point: 3 slice_point: 2", 3, r"slice_param\.slice_point.*increasing"),
    ("slice_point: 0", 2, r"slice_param\.slice_point.*increasing"),
    ("slice_point: 7", 2, r"slice_param\.slice_point.*increasing"),
    ("", 4, r"slice_param\.slice_point.*not divisible by 4"),
    ("axis: 1 slice_dim: 1", 2, r"slice_param\.axis"),
    ("axis: 2", 2, r"slice_param\.axis"),
])
def test_slice_bad_config_names_field(body, num_top, field):
    with pytest.raises(ConfigError, match=field):
        setup_layer(make_layer(slice_text(body)), [np.zeros((2, 6))], num_top=num_top)


def test_slice_matches_bvlc_caffe(conformance):
    layer, ref = caffe_layer(conformance, "layer_zoo_b", "slice")
    b, t = setup_layer(layer, [ref["data/concat"]])
    layer.forward(b, t)
    names = list(layer.param.top)
    for top, name in zip(t, names):
        top.diff[...] = ref[f"diff/{name}"]
    layer.backward(t, [True], b)
    for top, name in zip(t, names):
        assert_caffe_close(top.data, ref[f"data/{name}"])
    assert_caffe_close(b[0].diff, ref["diff/concat"])


@pytest.mark.gpu
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_cpu_gpu_parity(axis):
    x = np.random.default_rng(3).standard_normal((4, 4, 4))
    text = f"type: 'Slice' top: 'a' top: 'b' slice_param {{ axis: {axis} slice_point: 1 }}"
    assert_cpu_gpu_parity(text, bottoms=[x], rtol=1e-10, atol=1e-12)
