"""SPP: spatial pyramid pooling to a fixed-length vector."""
import math

import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


def spp_text(height, pool="MAX"):
    return f"type: 'SPP' spp_param {{ pyramid_height: {height} pool: {pool} }}"


def reference(x, height, pool):
    """Caffe's SPP bins: kernel ceil(H / b), stride = kernel, pad (kernel b - H + 1) // 2,
    ceil-rounded pooling; AVE counts padding in the divisor (clipped at H + pad)."""
    n, c, h, w = x.shape
    parts = []
    for level in range(height):
        b = 2 ** level
        geo = []
        for size in (h, w):
            k = math.ceil(size / b)
            p = (k * b - size + 1) // 2
            out = -(-(size + 2 * p - k) // k) + 1
            if p and (out - 1) * k >= size + p:
                out -= 1
            geo.append((k, p, out))
        (kh, ph, oh), (kw, pw, ow) = geo
        y = np.zeros((n, c, oh, ow))
        for i in range(oh):
            for j in range(ow):
                h0, w0 = i * kh - ph, j * kw - pw
                h1, w1 = min(h0 + kh, h + ph), min(w0 + kw, w + pw)
                cells = x[:, :, max(h0, 0):min(h1, h), max(w0, 0):min(w1, w)]
                if pool == "MAX":
                    y[:, :, i, j] = cells.max(axis=(2, 3))
                else:
                    y[:, :, i, j] = cells.sum(axis=(2, 3)) / ((h1 - h0) * (w1 - w0))
        parts.append(y.reshape(n, -1))
    return np.concatenate(parts, axis=1)


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
@pytest.mark.parametrize("height, size", [(3, (13, 13)), (2, (8, 7)), (3, (6, 9))])
def test_spp_forward_matches_reference(pool, height, size):
    x = np.random.default_rng(0).standard_normal((2, 3) + size)
    (y,) = run_layer(make_layer(spp_text(height, pool)), [x])
    assert y.shape == (2, 3 * sum(4 ** l for l in range(height)))
    np.testing.assert_allclose(y, reference(x, height, pool), rtol=1e-12)


def test_spp_height_one_is_global_pooling():
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 4))
    (y,) = run_layer(make_layer(spp_text(1)), [x])
    np.testing.assert_array_equal(y, x.max(axis=(2, 3), keepdims=True))


def test_spp_output_length_is_fixed_for_any_input_size():
    layer = make_layer(spp_text(3))
    bottom, top = setup_layer(layer, [np.ones((1, 2, 13, 13))])
    for size in [(13, 13), (20, 17), (9, 30)]:
        bottom[0].reshape((1, 2) + size)
        layer.reshape(bottom, top)
        layer.forward(bottom, top)
        assert top[0].shape == (1, 42)


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
@pytest.mark.parametrize("height", [1, 2, 3])
def test_spp_gradient(pool, height):
    check_gradient(make_layer(spp_text(height, pool)), bottom_shapes=[(2, 2, 8, 7)])


def test_spp_bad_config_names_field():
    with pytest.raises(ConfigError, match="spp_param.pyramid_height"):
        setup_layer(make_layer(spp_text(0)), [np.ones((1, 2, 8, 8))])
    with pytest.raises(ConfigError, match="spp_param.pyramid_height"):
        setup_layer(make_layer(spp_text(4)), [np.ones((1, 2, 5, 5))])   # 8 bins over 5 pixels
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer(spp_text(2)), [np.ones((2, 8, 8))])


@pytest.mark.gpu
@pytest.mark.parametrize("pool", ["MAX", "AVE"])
def test_spp_cpu_gpu_parity(pool):
    assert_cpu_gpu_parity(spp_text(3, pool),
                          bottoms=[np.random.default_rng(2).standard_normal((2, 3, 13, 11))])
