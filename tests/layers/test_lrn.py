import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.testing import assert_cpu_gpu_parity, check_gradient, make_layer, setup_layer

from .conftest import assert_caffe_close, caffe_layer


def lrn_text(params):
    return f"type: 'LRN' lrn_param {{ {params} }}"


def f32(v):
    return float(np.float32(v))  # lrn_param fields are floats


def reference_across(x, size, alpha, beta, k):
    """scale_c = k + alpha/size * sum of x^2 over channels c - (size-1)/2 .. c + (size-1)/2."""
    n, c, h, w = x.shape
    half = (size - 1) // 2
    y = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - half), min(c, ch + half + 1)
        scale = k + alpha / size * (x[:, lo:hi] ** 2).sum(axis=1)
        y[:, ch] = x[:, ch] * scale ** -beta
    return y


def reference_within(x, size, alpha, beta):
    """Caffe's WITHIN_CHANNEL: (1 + alpha * AVE-pool(x^2, size, pad (size-1)/2))^-beta * x,
    the AVE divisor counting padded cells (so size^2 everywhere)."""
    n, c, h, w = x.shape
    half = (size - 1) // 2
    y = np.empty_like(x)
    for i in range(h):
        for j in range(w):
            h0, w0 = i - half, j - half
            h1, w1 = min(h0 + size, h + half), min(w0 + size, w + half)
            divisor = (h1 - h0) * (w1 - w0)
            window = x[:, :, max(h0, 0):min(h1, h), max(w0, 0):min(w1, w)] ** 2
            scale = 1 + alpha * window.sum(axis=(2, 3)) / divisor
            y[:, :, i, j] = x[:, :, i, j] * scale ** -beta
    return y


@pytest.mark.parametrize("size, alpha, beta, k", [(5, 0.1, 0.75, 2.0), (3, 0.5, 0.75, 1.0),
                                                  (1, 0.3, 0.5, 1.5), (7, 2.0, 1.2, 1.0)])
def test_lrn_across_channels_forward(size, alpha, beta, k):
    x = np.random.default_rng(0).standard_normal((2, 6, 3, 4))
    layer = make_layer(lrn_text(f"local_size: {size} alpha: {alpha} beta: {beta} k: {k}"))
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    expected = reference_across(x, size, f32(alpha), f32(beta), f32(k))
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12)


@pytest.mark.parametrize("size, alpha, beta", [(3, 0.5, 0.75), (5, 2.0, 0.75), (1, 0.4, 1.0)])
def test_lrn_within_channel_forward(size, alpha, beta):
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 5))
    layer = make_layer(lrn_text(f"local_size: {size} alpha: {alpha} beta: {beta} k: 5 "
                                "norm_region: WITHIN_CHANNEL"))   # k is not used here
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference_within(x, size, f32(alpha), f32(beta)),
                               rtol=1e-12)


@pytest.mark.parametrize("params", [
    "local_size: 5 alpha: 0.5 beta: 0.75 k: 2",
    "local_size: 3 alpha: 1.5 beta: 0.6",
    "local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL",
    "local_size: 5 alpha: 2 beta: 1.1 norm_region: WITHIN_CHANNEL",
])
def test_lrn_gradient(params):
    check_gradient(make_layer(lrn_text(params)), bottom_shapes=[(2, 7, 4, 5)])


def test_lrn_defaults_are_caffes():
    layer = make_layer("type: 'LRN'")
    setup_layer(layer, [np.zeros((1, 2, 3, 3))])
    assert (layer.size, layer.alpha, layer.beta, layer.k) == (5, 1.0, 0.75, 1.0)


@pytest.mark.parametrize("params, shape, field", [
    ("local_size: 4", (1, 3, 4, 4), "local_size"),
    ("local_size: 0", (1, 3, 4, 4), "local_size"),
    ("local_size: 3", (3, 4, 4), "bottom"),
])
def test_lrn_bad_config_names_field(params, shape, field):
    with pytest.raises(ConfigError, match=field) as info:
        setup_layer(make_layer(lrn_text(params)), [np.zeros(shape)])
    assert "LRN" in str(info.value)


@pytest.mark.parametrize("name", ["lrn_across", "lrn_within"])
def test_lrn_matches_bvlc_caffe(conformance, name):
    layer, ref = caffe_layer(conformance, "layer_zoo_a", name)
    bottom, top = setup_layer(layer, [ref[f"data/{layer.param.bottom[0]}"]])
    layer.forward(bottom, top)
    assert_caffe_close(top[0].data, ref[f"data/{name}"])


def test_lrn_refuses_to_run_in_place():
    blob = Blob((2, 3, 4, 4), np.float64)
    with pytest.raises(ConfigError, match="in place"):
        make_layer(lrn_text("local_size: 3")).setup([blob], [blob])


@pytest.mark.gpu
@pytest.mark.skipif(not backend.has_gpu(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("region", ["ACROSS_CHANNELS", "WITHIN_CHANNEL"])
def test_lrn_cpu_gpu_parity(region):
    text = lrn_text(f"local_size: 3 alpha: 0.5 beta: 0.75 k: 2 norm_region: {region}")
    x = np.random.default_rng(8).standard_normal((2, 5, 6, 7))
    assert_cpu_gpu_parity(text, bottoms=[x], rtol=1e-10, atol=1e-12)
