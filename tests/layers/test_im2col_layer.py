"""Im2col: receptive fields laid out as channels."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


def im2col_text(kernel=3, stride=1, pad=0, dilation=1):
    return (f"type: 'Im2col' convolution_param {{ kernel_size: {kernel} stride: {stride} "
            f"pad: {pad} dilation: {dilation} }}")


def reference(x, k, s, p, d):
    n, c, h, w = x.shape
    ho, wo = (h + 2 * p - d * (k - 1) - 1) // s + 1, (w + 2 * p - d * (k - 1) - 1) // s + 1
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((n, c * k * k, ho, wo))
    for ci in range(c):
        for i in range(k):
            for j in range(k):
                for oh in range(ho):
                    for ow in range(wo):
                        out[:, (ci * k + i) * k + j, oh, ow] = padded[:, ci, oh * s + i * d, ow * s + j * d]
    return out


@pytest.mark.parametrize("kernel, stride, pad, dilation", [(3, 1, 0, 1), (3, 2, 1, 1), (2, 1, 1, 2)])
def test_im2col_forward_matches_reference(kernel, stride, pad, dilation):
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 6))
    (y,) = run_layer(make_layer(im2col_text(kernel, stride, pad, dilation)), [x])
    np.testing.assert_array_equal(y, reference(x, kernel, stride, pad, dilation))


@pytest.mark.parametrize("kernel, stride, pad, dilation", [(3, 2, 1, 1), (2, 1, 1, 2)])
def test_im2col_gradient(kernel, stride, pad, dilation):
    check_gradient(make_layer(im2col_text(kernel, stride, pad, dilation)), bottom_shapes=[(2, 2, 5, 4)])


def test_im2col_bad_config_names_field():
    with pytest.raises(ConfigError, match="kernel_size"):
        setup_layer(make_layer("type: 'Im2col'"), [np.ones((1, 2, 3, 3))])
    with pytest.raises(ConfigError, match="kernel_size"):
        setup_layer(make_layer(im2col_text(5)), [np.ones((1, 2, 3, 3))])
    with pytest.raises(ConfigError, match="convolution_param.axis"):
        setup_layer(make_layer("type: 'Im2col' convolution_param { kernel_size: 1 axis: 3 }"),
                    [np.ones((1, 2, 3, 3))])


@pytest.mark.gpu
def test_im2col_cpu_gpu_parity():
    assert_cpu_gpu_parity(im2col_text(3, 2, 1),
                          bottoms=[np.random.default_rng(2).standard_normal((2, 3, 5, 6))])
