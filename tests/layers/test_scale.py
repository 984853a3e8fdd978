"""Scale: learned and given scale over axis/num_axes, bias term, gradients, BVLC Caffe, GPU."""
import numpy as np
import pytest

from dist_caffe import rng
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import assert_caffe_close, caffe_layer, spread


SHAPE = (2, 3, 4, 5)


GAUSS = "filler { type: 'gaussian' std: 1 }"
LEARNED = [  # (scale_param text, axis, shape of the learned blob)
    ("", 1, (3,)),
    ("axis: 0 num_axes: -1", 0, SHAPE),
    ("axis: 2 num_axes: 2", 2, (4, 5)),
    ("axis: -1", 3, (5,)),
    ("axis: 1 num_axes: 0", 1, ()),
    ("axis: 1 num_axes: -1", 1, (3, 4, 5)),
]
GIVEN = [  # (scale_param text, axis, shape of bottom[1])
    ("axis: 0", 0, (2, 3)),
    ("", 1, (3,)),
    ("axis: -2", 2, (4, 5)),
    ("", 0, ()),
    ("axis: 1", 1, (3, 4, 5)),
]


def scale_text(body):
    return f"type: 'Scale' scale_param {{ {body} }}"


@pytest.mark.parametrize("body, axis, shape", LEARNED)
def test_scale_learned_forward(body, axis, shape):
    x = np.random.default_rng(0).standard_normal(SHAPE)
    layer = make_layer(scale_text(f"{body} {GAUSS}"))
    (y,) = run_layer(layer, [x])
    s = layer.blobs[0].data
    assert s.shape == shape
    np.testing.assert_allclose(y, x * spread(s, 4, axis), rtol=1e-15)


def test_scale_default_filler_is_one_and_bias_zero():
    x = np.random.default_rng(1).standard_normal(SHAPE)
    layer = make_layer(scale_text("bias_term: true"))
    (y,) = run_layer(layer, [x])
    np.testing.assert_array_equal(layer.blobs[0].data, np.ones(3))
    np.testing.assert_array_equal(layer.blobs[1].data, np.zeros(3))
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("body, axis, shape", GIVEN)
def test_scale_second_bottom_forward(body, axis, shape):
    g = np.random.default_rng(2)
    x, s = g.standard_normal(SHAPE), g.standard_normal(shape)
    layer = make_layer(scale_text(body))
    (y,) = run_layer(layer, [x, s])
    assert layer.blobs == []
    np.testing.assert_allclose(y, x * spread(s, 4, axis), rtol=1e-15)


def test_scale_bias_term_forward():
    g = np.random.default_rng(3)
    x, s = g.standard_normal(SHAPE), g.standard_normal((3, 4))
    layer = make_layer(scale_text("bias_term: true bias_filler { type: 'gaussian' std: 1 }"))
    (y,) = run_layer(layer, [x, s])
    b = layer.blobs[0].data
    assert b.shape == (3, 4)
    np.testing.assert_allclose(y, x * s[:, :, None] + b[:, :, None], rtol=1e-14)


@pytest.mark.parametrize("body, axis, shape", LEARNED)
@pytest.mark.parametrize("bias", ["", "bias_term: true bias_filler { type: 'gaussian' std: 1 }"])
def test_scale_learned_gradient(body, axis, shape, bias):
    check_gradient(make_layer(scale_text(f"{body} {GAUSS} {bias}")), bottom_shapes=[SHAPE])


@pytest.mark.parametrize("body, axis, shape", GIVEN)
@pytest.mark.parametrize("bias", ["", "bias_term: true bias_filler { type: 'gaussian' std: 1 }"])
def test_scale_second_bottom_gradient(body, axis, shape, bias):
    check_gradient(make_layer(scale_text(f"{body} {bias}")), bottom_shapes=[SHAPE, shape])


def test_scale_param_gradients_accumulate_bottom_gradients_do_not():
    g = np.random.default_rng(4)
    x, s, dy = g.standard_normal(SHAPE), g.standard_normal(3), g.standard_normal(SHAPE)
    for bottoms in ([x], [x, s]):
        layer = make_layer(scale_text(f"{GAUSS} bias_term: true"))
        bottom, top = setup_layer(layer, bottoms)
        layer.forward(bottom, top)
        top[0].diff[...] = dy
        for _ in range(2):
            layer.backward(top, [True] * len(bottom), bottom)
        scale = (bottom[1] if len(bottom) > 1 else layer.blobs[0]).data
        np.testing.assert_allclose(bottom[0].diff, dy * scale[:, None, None], rtol=1e-14)
        np.testing.assert_allclose(layer.blobs[-1].diff, 2 * dy.sum(axis=(0, 2, 3)), rtol=1e-12)
        expect = (dy * x).sum(axis=(0, 2, 3))
        if len(bottom) > 1:
            np.testing.assert_allclose(bottom[1].diff, expect, rtol=1e-12)
        else:
            np.testing.assert_allclose(layer.blobs[0].diff, 2 * expect, rtol=1e-12)


def test_scale_in_place_matches_out_of_place():
    g = np.random.default_rng(5)
    x, dy = g.standard_normal(SHAPE), g.standard_normal(SHAPE)
    out = []
    for in_place in (False, True):
        layer = make_layer(scale_text(f"{GAUSS} bias_term: true"))
        bottom = Blob(SHAPE, np.float64)
        bottom.data[...] = x
        top = bottom if in_place else Blob((), np.float64)
        rng.set_random_seed(0)
        layer.setup([bottom], [top])
        layer.forward([bottom], [top])
        y = top.data.copy()
        top.diff[...] = dy
        layer.backward([top], [True], [bottom])
        out.append([y, bottom.diff.copy()] + [b.diff.copy() for b in layer.blobs])
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-14)


@pytest.mark.parametrize("body, bottoms, field", [
    ("num_axes: -2", [SHAPE], r"scale_param\.num_axes"),
    ("axis: 2 num_axes: 3", [SHAPE], r"scale_param\.num_axes"),
    ("axis: 4", [SHAPE], r"scale_param\.axis"),
    ("axis: -5", [SHAPE], r"scale_param\.axis"),
    ("axis: 1", [SHAPE, (4,)], r"bottom\[1\]"),
    ("axis: 2", [SHAPE, (4, 5, 6)], r"bottom\[1\]"),
])
def test_scale_bad_config_names_field(body, bottoms, field):
    with pytest.raises(ConfigError, match=field):
        setup_layer(make_layer(scale_text(body)), [np.zeros(s) for s in bottoms])


def test_scale_given_blob_of_wrong_shape_is_a_config_error():
    layer = make_layer(scale_text(""))
    layer.blobs = [Blob((4,), np.float64)]
    with pytest.raises(ConfigError, match=r"blobs\[0\]"):
        setup_layer(layer, [np.zeros(SHAPE)])


@pytest.mark.parametrize("name, bottom, bias", [("scale_bn", "bn_train", True),
                                                ("probe_relu_leaky", "relu_leaky", False)])
def test_scale_matches_bvlc_caffe(name, bottom, bias, conformance):
    layer, ref = caffe_layer(conformance, "layer_zoo_a", name)
    n = 2 if bias else 1
    layer.blobs = [Blob(ref[f"param/{name}/{j}"].shape, np.float32) for j in range(n)]
    for j, blob in enumerate(layer.blobs):
        blob.data[...] = ref[f"param/{name}/{j}"]
    b, t = setup_layer(layer, [ref[f"data/{bottom}"]])
    layer.forward(b, t)
    t[0].diff[...] = ref[f"diff/{name}"] if bias else 1.0  # the probe's diff is its loss weight
    layer.backward(t, [True], b)
    assert_caffe_close(t[0].data, ref[f"data/{name}"])
    assert_caffe_close(b[0].diff, ref[f"diff/{bottom}"])
    for j in range(n):
        assert_caffe_close(layer.blobs[j].diff, ref[f"param_diff/{name}/{j}"])


@pytest.mark.gpu
@pytest.mark.parametrize("body, shapes", [(f"{GAUSS} bias_term: true", [SHAPE]),
                                          ("axis: 1 bias_term: true", [SHAPE, (3, 4)])])
def test_scale_cpu_gpu_parity(body, shapes):
    g = np.random.default_rng(6)
    bottoms = [g.standard_normal(s) for s in shapes]
    assert_cpu_gpu_parity(scale_text(body), bottoms=bottoms, rtol=1e-10, atol=1e-12)
