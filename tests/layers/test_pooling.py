import math

import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.testing import assert_cpu_gpu_parity, check_gradient, make_layer, setup_layer

from .conftest import assert_caffe_close, caffe_layer


def pool_text(params):
    return f"type: 'Pooling' pooling_param {{ {params} }}"


def out_len(size, k, s, p):
    out = int(math.ceil((size + 2 * p - k) / s)) + 1
    if p > 0 and (out - 1) * s >= size + p:
        out -= 1
    return out


def reference_pool(x, method, k, s, p):
    """Caffe's pooling loops: clipped windows, first maximum, divisor over [-pad, H + pad)."""
    n, c, h, w = x.shape
    oh, ow = out_len(h, k[0], s[0], p[0]), out_len(w, k[1], s[1], p[1])
    y, mask = np.zeros((n, c, oh, ow)), np.zeros((n, c, oh, ow), dtype=int)
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])
            size = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            win = x[:, :, h0:h1, w0:w1].reshape(n, c, -1)
            if method == "MAX":
                a = win.argmax(axis=-1)
                y[:, :, i, j] = win.max(axis=-1)
                mask[:, :, i, j] = (h0 + a // (w1 - w0)) * w + w0 + a % (w1 - w0)
            else:
                y[:, :, i, j] = win.sum(axis=-1) / size
    return y, mask


def reference_pool_backward(x, dy, method, k, s, p, mask):
    n, c, h, w = x.shape
    dx = np.zeros_like(x)
    flat = dx.reshape(n, c, -1)
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            if method == "MAX":
                nn, cc = np.indices((n, c))
                np.add.at(flat, (nn, cc, mask[:, :, i, j]), dy[:, :, i, j])
            else:
                h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
                h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])
                size = (h1 - h0) * (w1 - w0)
                dx[:, :, max(h0, 0):min(h1, h), max(w0, 0):min(w1, w)] += \
                    dy[:, :, i, j][:, :, None, None] / size
    return dx


GEOMETRIES = [  # (params, H, W, kernel, stride, pad)
    ("kernel_size: 3 stride: 2 pad: 1", 7, 7, (3, 3), (2, 2), (1, 1)),
    ("kernel_size: 3 stride: 2", 6, 6, (3, 3), (2, 2), (0, 0)),
    ("kernel_size: 2 stride: 2 pad: 1", 5, 8, (2, 2), (2, 2), (1, 1)),   # last window dropped
    ("kernel_size: 3 stride: 1 pad: 1", 5, 4, (3, 3), (1, 1), (1, 1)),
    ("kernel_size: 2 stride: 2", 8, 6, (2, 2), (2, 2), (0, 0)),
    ("kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0", 6, 5,
     (3, 2), (2, 1), (1, 0)),
    ("kernel_size: 4 stride: 3 pad: 2", 9, 10, (4, 4), (3, 3), (2, 2)),
    ("kernel_size: 2 stride: 3 pad: 1", 8, 7, (2, 2), (3, 3), (1, 1)),   # gaps between windows
    ("kernel_size: 3 stride: 1 pad: 1", 3, 2, (3, 3), (1, 1), (1, 1)),   # kernel wider than W
]


def _distinct(shape, seed=0):
    """Values at least 1e-2 apart, so that no finite-difference step changes a window's max."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 1e-2 - n * 5e-3


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("params, h, w, k, s, p", GEOMETRIES)
def test_pooling_forward_backward_match_reference(method, params, h, w, k, s, p):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, h, w))
    layer = make_layer(pool_text(f"pool: {method} {params}"))
    num_top = 2 if method == "MAX" else 1
    bottom, top = setup_layer(layer, [x], num_top=num_top)
    layer.forward(bottom, top)
    y, mask = reference_pool(x, method, k, s, p)
    assert top[0].shape == y.shape
    np.testing.assert_allclose(top[0].data, y, rtol=1e-12, atol=1e-14)
    if method == "MAX":
        np.testing.assert_array_equal(top[1].data, mask)
    dy = rng.standard_normal(y.shape)
    top[0].diff[...] = dy
    layer.backward(top, [True], bottom)
    expected = reference_pool_backward(x, dy, method, k, s, p, mask)
    np.testing.assert_allclose(bottom[0].diff, expected, rtol=1e-12, atol=1e-14)


def test_max_pooling_routes_ties_to_the_first_maximum():
    x = np.ones((1, 1, 4, 4))
    layer = make_layer(pool_text("pool: MAX kernel_size: 2 stride: 2"))
    bottom, top = setup_layer(layer, [x], num_top=2)
    layer.forward(bottom, top)
    np.testing.assert_array_equal(top[1].data[0, 0], [[0, 2], [8, 10]])
    top[0].diff[...] = 1
    layer.backward(top, [True], bottom)
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1
    np.testing.assert_array_equal(bottom[0].diff[0, 0], expected)


def test_ave_pooling_divisor_counts_padding():
    # H = W = 2, k 3, pad 1, stride 1: every window covers 3x3 cells of [-1, 3), 4 of them real
    layer = make_layer(pool_text("pool: AVE kernel_size: 3 stride: 1 pad: 1"))
    bottom, top = setup_layer(layer, [np.ones((1, 1, 2, 2))])
    layer.forward(bottom, top)
    np.testing.assert_allclose(top[0].data, np.full((1, 1, 2, 2), 4 / 9))


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_global_pooling(method):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 5, 6))
    layer = make_layer(pool_text(f"pool: {method} global_pooling: true"))
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    reduce = x.max if method == "MAX" else x.mean
    ref = reduce(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(top[0].data, ref, rtol=1e-12)
    dy = rng.standard_normal((2, 3, 1, 1))
    top[0].diff[...] = dy
    layer.backward(top, [True], bottom)
    if method == "MAX":
        expected = np.where(x == ref, dy, 0.0)
    else:
        expected = np.broadcast_to(dy / 30, x.shape)
    np.testing.assert_allclose(bottom[0].diff, expected, rtol=1e-12)
    bottom[0].reshape(2, 3, 4, 4)   # the kernel follows the input
    layer.reshape(bottom, top)
    assert top[0].shape == (2, 3, 1, 1)


def test_floor_round_mode():
    layer = make_layer(pool_text("pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR"))
    _, top = setup_layer(layer, [np.zeros((1, 1, 6, 6))])
    assert top[0].shape == (1, 1, 2, 2)


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("params, shape", [
    ("kernel_size: 3 stride: 2 pad: 1", (2, 2, 7, 7)),
    ("kernel_size: 3 stride: 2", (1, 2, 6, 6)),
    ("kernel_size: 2 stride: 2 pad: 1", (1, 2, 5, 5)),
    ("kernel_h: 3 kernel_w: 2 stride: 1 pad_h: 1", (1, 2, 4, 5)),
    ("kernel_size: 2 stride: 3 pad: 1", (1, 2, 8, 7)),
    ("global_pooling: true", (2, 2, 3, 4)),
])
def test_pooling_gradient(method, params, shape):
    layer = make_layer(pool_text(f"pool: {method} {params}"))
    check_gradient(layer, bottoms=[_distinct(shape)], step=1e-4 if method == "MAX" else 1e-5)


@pytest.mark.parametrize("params, tops, field", [
    ("pool: MAX kernel_size: 3 pad: 3", 1, "pad"),
    ("pool: AVE kernel_size: 2 pad: 2", 1, "pad"),
    ("pool: MAX global_pooling: true kernel_size: 2", 1, "kernel_size"),
    ("pool: MAX global_pooling: true stride: 2", 1, "global_pooling"),
    ("pool: MAX", 1, "kernel_size"),
    ("pool: MAX kernel_h: 2", 1, "kernel_h"),
    ("pool: MAX kernel_size: 2 kernel_w: 3", 1, "kernel_size"),
    ("pool: MAX kernel_size: 2 stride: 0", 1, "stride"),
    ("pool: AVE kernel_size: 2", 2, "top"),
    ("pool: MAX kernel_size: 9", 1, "kernel_size"),
])
def test_pooling_bad_config_names_field(params, tops, field):
    layer = make_layer(pool_text(params))
    with pytest.raises(ConfigError, match=field) as info:
        setup_layer(layer, [np.zeros((1, 1, 6, 6))], num_top=tops)
    assert "Pooling" in str(info.value)


def test_pooling_needs_4d_input():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer(pool_text("kernel_size: 2")), [np.zeros((2, 3, 4))])


@pytest.mark.parametrize("name", ["pool_max", "pool_ave", "pool_maxpad", "pool_global"])
def test_pooling_matches_bvlc_caffe(conformance, name):
    layer, ref = caffe_layer(conformance, "layer_zoo_a", name)
    bottom, top = setup_layer(layer, [ref[f"data/{layer.param.bottom[0]}"]])
    layer.forward(bottom, top)
    assert_caffe_close(top[0].data, ref[f"data/{name}"])


def test_pooling_refuses_to_run_in_place():
    blob = Blob((2, 3, 4, 4), np.float64)
    with pytest.raises(ConfigError, match="in place"):
        make_layer(pool_text("kernel_size: 1")).setup([blob], [blob])


@pytest.mark.gpu
@pytest.mark.skipif(not backend.has_gpu(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("params, num_top", [("pool: MAX kernel_size: 3 stride: 2 pad: 1", 2),
                                             ("pool: AVE kernel_size: 3 stride: 2 pad: 1", 1),
                                             ("pool: MAX global_pooling: true", 1)])
def test_pooling_cpu_gpu_parity(params, num_top):
    x = np.random.default_rng(8).standard_normal((2, 3, 9, 8))
    assert_cpu_gpu_parity(pool_text(params), bottoms=[x], num_top=num_top, rtol=1e-10, atol=1e-12)
