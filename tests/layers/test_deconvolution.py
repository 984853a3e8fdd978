"""Deconvolution: the transpose of Convolution."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


def deconv_text(num_output=4, kernel=3, stride=2, pad=1, group=1, dilation=1, bias="true"):
    return (f"type: 'Deconvolution' convolution_param {{ num_output: {num_output} "
            f"kernel_size: {kernel} stride: {stride} pad: {pad} group: {group} "
            f"dilation: {dilation} bias_term: {bias} weight_filler {{ type: 'gaussian' }} "
            "bias_filler { type: 'gaussian' } }")


def reference(x, w, b, stride, pad, dilation, group):
    """Scatter every input pixel through its kernel (the definition of a transposed conv)."""
    n, c, h, wd = x.shape
    co_g, kh, kw = w.shape[1:]
    ho = stride * (h - 1) + dilation * (kh - 1) + 1
    wo = stride * (wd - 1) + dilation * (kw - 1) + 1
    full = np.zeros((n, co_g * group, ho, wo))
    cg = c // group
    for ci in range(c):
        g = ci // cg
        for i in range(kh):
            for j in range(kw):
                contrib = x[:, ci, :, :, None] * w[ci, :, i, j]          # (n, h, w, co_g)
                rows = slice(i * dilation, i * dilation + stride * (h - 1) + 1, stride)
                cols = slice(j * dilation, j * dilation + stride * (wd - 1) + 1, stride)
                full[:, g * co_g:(g + 1) * co_g, rows, cols] += contrib.transpose(0, 3, 1, 2)
    out = full[:, :, pad:ho - pad, pad:wo - pad]
    return out if b is None else out + b.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("kernel, stride, pad, group, dilation", [
    (3, 2, 1, 1, 1), (4, 2, 1, 2, 1), (2, 1, 0, 1, 2), (3, 3, 0, 4, 1)])
def test_deconvolution_forward_matches_scatter_reference(kernel, stride, pad, group, dilation):
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 5))
    layer = make_layer(deconv_text(4, kernel, stride, pad, group, dilation))
    (y,) = run_layer(layer, [x])
    assert layer.blobs[0].shape == (4, 4 // group, kernel, kernel)   # (C_in, C_out / group, k, k)
    ref = reference(x, layer.blobs[0].data, layer.blobs[1].data, stride, pad, dilation, group)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


def test_deconvolution_is_the_adjoint_of_convolution():
    """<deconv(x), y> = <x, conv(y)> with the same weights and no bias."""
    g = np.random.default_rng(1)
    deconv = make_layer(deconv_text(3, 3, 2, 1, bias="false"))
    x = g.standard_normal((1, 2, 4, 4))
    (dy,) = run_layer(deconv, [x])
    conv = make_layer("type: 'Convolution' convolution_param { num_output: 2 kernel_size: 3 "
                      "stride: 2 pad: 1 bias_term: false }")
    y = g.standard_normal(dy.shape)
    bottom, top = setup_layer(conv, [y])
    conv.blobs[0].data[...] = deconv.blobs[0].data   # both (2, 3, 3, 3): Caffe's layouts match
    conv.forward(bottom, top)
    np.testing.assert_allclose((dy * y).sum(), (x * top[0].data).sum(), rtol=1e-10)


@pytest.mark.parametrize("text", [deconv_text(4, 3, 2, 1, 2), deconv_text(3, 2, 1, 0, 1, 2, "false"),
                                  "type: 'Deconvolution' convolution_param { num_output: 2 kernel_h: 2 "
                                  "kernel_w: 3 stride_h: 2 stride_w: 1 weight_filler { type: 'gaussian' } }"])
def test_deconvolution_gradient(text):
    check_gradient(make_layer(text), bottom_shapes=[(2, 4, 3, 3)])


def test_deconvolution_bilinear_upsampling():
    """The FCN idiom: group = C, bilinear weights, stride 2 doubles the size."""
    text = ("type: 'Deconvolution' convolution_param { num_output: 2 group: 2 kernel_size: 4 "
            "stride: 2 pad: 1 bias_term: false weight_filler { type: 'bilinear' } }")
    (y,) = run_layer(make_layer(text), [np.ones((1, 2, 4, 4))])
    assert y.shape == (1, 2, 8, 8)
    np.testing.assert_allclose(y[:, :, 1:-1, 1:-1], 1.0)   # interior of a constant image


def test_deconvolution_bad_config_names_field():
    with pytest.raises(ConfigError, match="group"):
        setup_layer(make_layer(deconv_text(4, 3, 2, 1, 3)), [np.ones((1, 4, 3, 3))])
    with pytest.raises(ConfigError, match="pad"):
        setup_layer(make_layer(deconv_text(4, 1, 1, 2)), [np.ones((1, 4, 1, 1))])
    with pytest.raises(ConfigError, match="kernel_size"):
        setup_layer(make_layer("type: 'Deconvolution' convolution_param { num_output: 2 }"),
                    [np.ones((1, 4, 3, 3))])


@pytest.mark.gpu
def test_deconvolution_cpu_gpu_parity():
    assert_cpu_gpu_parity(deconv_text(4, 3, 2, 1, 2),
                          bottoms=[np.random.default_rng(2).standard_normal((2, 4, 3, 3))])
