"""Concat: axes and concat_dim, gradients, shape errors, BVLC Caffe, GPU parity."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import assert_caffe_close, caffe_layer


def bottoms_for(axis, sizes, base=(2, 3, 4, 5), seed=0):
    g = np.random.default_rng(seed)
    shapes = [base[:axis] + (n,) + base[axis + 1:] for n in sizes]
    return [g.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("body, axis", [("", 1), ("axis: 0", 0), ("axis: 2", 2), ("axis: -1", 3),
                                        ("concat_dim: 2", 2), ("concat_dim: 0", 0)])
def test_concat_forward_matches_numpy(body, axis):
    xs = bottoms_for(axis, [1, 3, 2])
    (y,) = run_layer(make_layer(f"type: 'Concat' concat_param {{ {body} }}"), xs)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=axis))


def test_concat_backward_splits_the_top_diff():
    xs = bottoms_for(2, [1, 3])
    layer = make_layer("type: 'Concat' concat_param { axis: 2 }")
    bottom, top = setup_layer(layer, xs)
    layer.forward(bottom, top)
    dy = np.random.default_rng(1).standard_normal(top[0].shape)
    top[0].diff[...] = dy
    bottom[0].diff[...] = 7
    layer.backward(top, [False, True], bottom)
    np.testing.assert_array_equal(bottom[1].diff, dy[:, :, 1:])
    np.testing.assert_array_equal(bottom[0].diff, 7)  # propagate_down false: left alone


def test_concat_single_bottom_is_a_copy():
    (x,) = bottoms_for(1, [3])
    (y,) = run_layer(make_layer("type: 'Concat'"), [x])
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_concat_gradient(axis):
    layer = make_layer(f"type: 'Concat' concat_param {{ axis: {axis} }}")
    shapes = [(2, 3, 4)[:axis] + (n,) + (2, 3, 4)[axis + 1:] for n in (2, 1, 3)]
    check_gradient(layer, bottom_shapes=shapes)


def test_concat_shape_mismatch_names_bottom_and_shapes():
    layer = make_layer("type: 'Concat' concat_param { axis: 1 }")
    with pytest.raises(ConfigError, match=r"bottom\[2\] has shape \(2, 3, 5\).*\(2, 3, 4\)"):
        setup_layer(layer, [np.zeros((2, 3, 4)), np.zeros((2, 1, 4)), np.zeros((2, 3, 5))])


def test_concat_axis_count_mismatch_is_a_config_error():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'Concat'"), [np.zeros((2, 3)), np.zeros((2, 3, 1))])


@pytest.mark.parametrize("body, field", [("axis: 1 concat_dim: 1", r"concat_param\.axis"),
                                         ("axis: 3", r"concat_param\.axis"),
                                         ("concat_dim: 3", r"concat_param\.concat_dim")])
def test_concat_bad_axis_names_field(body, field):
    with pytest.raises(ConfigError, match=field):
        layer = make_layer(f"type: 'Concat' concat_param {{ {body} }}")
        setup_layer(layer, [np.zeros((2, 3, 4))] * 2)


def test_concat_matches_bvlc_caffe(conformance):
    layer, ref = caffe_layer(conformance, "layer_zoo_b", "concat")
    b, t = setup_layer(layer, [ref[f"data/{n}"] for n in ("eltsum", "eltmax", "data")])
    layer.forward(b, t)
    assert_caffe_close(t[0].data, ref["data/concat"])


def test_concat_same_bottom_twice_matches_bvlc_caffe(conformance):
    # concat_h reads slice_a twice; Caffe's split sums both halves' gradients into slice_a.
    layer, ref = caffe_layer(conformance, "layer_zoo_b", "concat_h")
    b, t = setup_layer(layer, [ref["data/slice_a"]] * 2)
    layer.forward(b, t)
    t[0].diff[...] = ref["diff/concat_h"]
    layer.backward(t, [True, True], b)
    assert_caffe_close(t[0].data, ref["data/concat_h"])
    assert_caffe_close(b[0].diff + b[1].diff, ref["diff/slice_a"])


@pytest.mark.gpu
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_concat_cpu_gpu_parity(axis):
    text = f"type: 'Concat' concat_param {{ axis: {axis} }}"
    assert_cpu_gpu_parity(text, bottoms=bottoms_for(axis, [2, 1, 3], seed=axis),
                          rtol=1e-10, atol=1e-12)
