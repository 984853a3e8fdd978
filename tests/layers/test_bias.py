"""Bias: learned and given bias over axis/num_axes, gradients, in place, BVLC Caffe, GPU parity."""
import numpy as np
import pytest

from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import assert_caffe_close, caffe_layer, spread


SHAPE = (2, 3, 4, 5)


GAUSS = "filler { type: 'gaussian' std: 1 }"
LEARNED = [  # (bias_param text, axis, shape of the learned blob)
    ("", 1, (3,)),
    ("axis: 0 num_axes: -1", 0, SHAPE),
    ("axis: 2 num_axes: 2", 2, (4, 5)),
    ("axis: -1", 3, (5,)),
    ("num_axes: 0", 1, ()),
]
GIVEN = [  # (bias_param text, axis, shape of bottom[1])
    ("axis: 0", 0, (2, 3)),
    ("", 1, (3,)),
    ("axis: -2", 2, (4, 5)),
    ("", 0, ()),
]


def bias_text(body):
    return f"type: 'Bias' bias_param {{ {body} }}"


@pytest.mark.parametrize("body, axis, shape", LEARNED)
def test_bias_learned_forward(body, axis, shape):
    x = np.random.default_rng(0).standard_normal(SHAPE)
    layer = make_layer(bias_text(f"{body} {GAUSS}"))
    (y,) = run_layer(layer, [x])
    b = layer.blobs[0].data
    assert b.shape == shape
    np.testing.assert_allclose(y, x + spread(b, 4, axis), rtol=1e-15)


def test_bias_default_filler_is_zero():
    x = np.random.default_rng(1).standard_normal(SHAPE)
    layer = make_layer("type: 'Bias'")
    (y,) = run_layer(layer, [x])
    np.testing.assert_array_equal(layer.blobs[0].data, np.zeros(3))
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("body, axis, shape", GIVEN)
def test_bias_second_bottom_forward(body, axis, shape):
    g = np.random.default_rng(2)
    x, b = g.standard_normal(SHAPE), g.standard_normal(shape)
    (y,) = run_layer(make_layer(bias_text(body)), [x, b])
    np.testing.assert_allclose(y, x + spread(b, 4, axis), rtol=1e-15)


@pytest.mark.parametrize("body, axis, shape", LEARNED)
def test_bias_learned_gradient(body, axis, shape):
    check_gradient(make_layer(bias_text(f"{body} {GAUSS}")), bottom_shapes=[SHAPE])


@pytest.mark.parametrize("body, axis, shape", GIVEN)
def test_bias_second_bottom_gradient(body, axis, shape):
    check_gradient(make_layer(bias_text(body)), bottom_shapes=[SHAPE, shape])


def test_bias_param_gradient_accumulates_and_works_in_place():
    g = np.random.default_rng(3)
    x, dy = g.standard_normal(SHAPE), g.standard_normal(SHAPE)
    layer = make_layer(bias_text(GAUSS))
    blob = Blob(SHAPE, np.float64)
    blob.data[...] = x
    layer.setup([blob], [blob])
    layer.forward([blob], [blob])
    np.testing.assert_allclose(blob.data, x + layer.blobs[0].data[:, None, None], rtol=1e-15)
    blob.diff[...] = dy
    for _ in range(2):
        layer.backward([blob], [True], [blob])
    np.testing.assert_array_equal(blob.diff, dy)
    np.testing.assert_allclose(layer.blobs[0].diff, 2 * dy.sum(axis=(0, 2, 3)), rtol=1e-12)


@pytest.mark.parametrize("body, bottoms, field", [
    ("num_axes: -2", [SHAPE], r"bias_param\.num_axes"),
    ("axis: 3 num_axes: 2", [SHAPE], r"bias_param\.num_axes"),
    ("axis: 4", [SHAPE], r"bias_param\.axis"),
    ("axis: 1", [SHAPE, (2,)], r"bottom\[1\]"),
])
def test_bias_bad_config_names_field(body, bottoms, field):
    with pytest.raises(ConfigError, match=field):
        setup_layer(make_layer(bias_text(body)), [np.zeros(s) for s in bottoms])


def test_bias_matches_bvlc_caffe(conformance):
    layer, ref = caffe_layer(conformance, "layer_zoo_a", "bias_c")
    layer.blobs = [Blob(ref["param/bias_c/0"].shape, np.float32)]
    layer.blobs[0].data[...] = ref["param/bias_c/0"]
    b, t = setup_layer(layer, [ref["data/bn_global"]])
    layer.forward(b, t)
    t[0].diff[...] = ref["diff/bias_c"]
    layer.backward(t, [True], b)
    assert_caffe_close(t[0].data, ref["data/bias_c"])
    assert_caffe_close(b[0].diff, ref["diff/bn_global"])
    assert_caffe_close(layer.blobs[0].diff, ref["param_diff/bias_c/0"])


@pytest.mark.gpu
@pytest.mark.parametrize("body, shapes", [(GAUSS, [SHAPE]), ("axis: 1", [SHAPE, (3, 4)])])
def test_bias_cpu_gpu_parity(body, shapes):
    g = np.random.default_rng(6)
    bottoms = [g.standard_normal(s) for s in shapes]
    assert_cpu_gpu_parity(bias_text(body), bottoms=bottoms, rtol=1e-10, atol=1e-12)
