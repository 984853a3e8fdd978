"""BatchNorm: batch and global statistics, running sums, lr_mult pinning, gradients, BVLC Caffe."""
import numpy as np
import pytest

from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.layer import TEST, TRAIN
from dist_caffe.proto import read_net_param
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import assert_caffe_close, caffe_layer


EPS = float(np.float32(1e-5))      # the proto fields are floats
FRACTION = float(np.float32(0.999))


def channel_axes(x):
    return (0,) + tuple(range(2, x.ndim)) if x.ndim > 1 else (0,)


def with_stats(layer, mean_sum, var_sum, s):
    """Give the layer its three blobs before set-up (as loaded weights would)."""
    values = [np.asarray(mean_sum, float), np.asarray(var_sum, float), np.array([s], float)]
    layer.blobs = [Blob(v.shape, np.float64) for v in values]
    for blob, v in zip(layer.blobs, values):
        blob.data[...] = v
    return layer


@pytest.mark.parametrize("shape", [(4, 3, 5, 2), (6, 4), (5, 2, 7)])
def test_batch_norm_train_forward_and_running_stats(shape):
    x = 3 + 2 * np.random.default_rng(0).standard_normal(shape)
    c = shape[1]
    layer = with_stats(make_layer("type: 'BatchNorm'"), np.arange(c), np.ones(c), 2.0)
    (y,) = run_layer(layer, [x])
    axes = channel_axes(x)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + EPS), rtol=1e-12, atol=1e-12)
    m = x.size // c
    mean_sum, var_sum = FRACTION * np.arange(c) + mean.ravel(), FRACTION + var.ravel() * m / (m - 1)
    np.testing.assert_allclose(layer.blobs[0].data, mean_sum, rtol=1e-12)
    np.testing.assert_allclose(layer.blobs[1].data, var_sum, rtol=1e-12)
    np.testing.assert_allclose(layer.blobs[2].data, [2 * FRACTION + 1], rtol=1e-15)


def test_batch_norm_test_phase_uses_global_stats_by_default():
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    mean_sum, var_sum, s = np.array([1.0, -2, 0.5]), np.array([4.0, 1, 9]), 2.0
    layer = with_stats(make_layer("type: 'BatchNorm'", phase=TEST), mean_sum, var_sum, s)
    (y,) = run_layer(layer, [x])
    expect = (x - (mean_sum / s)[:, None]) / np.sqrt(var_sum / s + EPS)[:, None]
    np.testing.assert_allclose(y, expect, rtol=1e-12)
    np.testing.assert_array_equal(layer.blobs[2].data, [s])  # statistics left alone


def test_batch_norm_zero_scale_factor_means_zero_stats():
    x = np.random.default_rng(2).standard_normal((2, 3))
    layer = with_stats(make_layer("type: 'BatchNorm' batch_norm_param { use_global_stats: true }"),
                       np.ones(3), np.ones(3), 0.0)
    (y,) = run_layer(layer, [x])
    np.testing.assert_allclose(y, x / np.sqrt(EPS), rtol=1e-12)


def test_batch_norm_explicit_use_global_stats_false_in_test_phase():
    x = np.random.default_rng(3).standard_normal((4, 2))
    layer = make_layer("type: 'BatchNorm' batch_norm_param { use_global_stats: false }", phase=TEST)
    (y,) = run_layer(layer, [x])
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + EPS), rtol=1e-12)
    assert layer.blobs[2].data[0] == 1.0


def test_batch_norm_pins_lr_mult_zero_on_its_blobs():
    layer = make_layer("type: 'BatchNorm' param { lr_mult: 0 decay_mult: 0 }")
    setup_layer(layer, [np.zeros((2, 3))])
    assert [p.lr_mult for p in layer.param.param] == [0, 0, 0]
    assert layer.param.param[0].decay_mult == 0
    assert layer.param_propagate_down == [False, False, False]


def test_batch_norm_learnable_stats_is_a_config_error():
    layer = make_layer("type: 'BatchNorm' param { lr_mult: 0 } param { lr_mult: 1 }")
    with pytest.raises(ConfigError, match=r"param\[1\]\.lr_mult"):
        setup_layer(layer, [np.zeros((2, 3))])


def test_batch_norm_net_freezes_stats():
    from dist_caffe.net import Net
    net = Net(read_net_param("""
        layer { name: 'in' type: 'Input' top: 'x' input_param { shape { dim: 4 dim: 3 } } }
        layer { name: 'bn' type: 'BatchNorm' bottom: 'x' top: 'x' }"""), TRAIN, dtype=np.float64)
    assert [e.lr_mult for e in net.param_layout] == [0, 0, 0]
    x = np.random.default_rng(4).standard_normal((4, 3))
    net.forward(x=x)
    out = net.blobs["x"].data
    np.testing.assert_allclose(out, (x - x.mean(0)) / np.sqrt(x.var(0) + EPS), rtol=1e-12)
    np.testing.assert_allclose(net.params["bn"][0].data, x.mean(0), rtol=1e-12)


@pytest.mark.parametrize("shape", [(3, 2, 3, 2), (5, 3), (4, 2, 3)])
def test_batch_norm_gradient_batch_stats(shape):
    check_gradient(make_layer("type: 'BatchNorm'"), bottom_shapes=[shape])


@pytest.mark.parametrize("shape", [(3, 2, 3, 2), (5, 2)])
def test_batch_norm_gradient_global_stats(shape):
    layer = with_stats(make_layer("type: 'BatchNorm' batch_norm_param { use_global_stats: true }"),
                       [0.3, -1.0], [2.0, 0.5], 1.5)
    check_gradient(layer, bottom_shapes=[shape])


@pytest.mark.parametrize("phase", [TRAIN, TEST])
def test_batch_norm_in_place_matches_out_of_place(phase):
    g = np.random.default_rng(5)
    x, dy = g.standard_normal((3, 2, 4)), g.standard_normal((3, 2, 4))
    out = []
    for in_place in (False, True):
        layer = make_layer("type: 'BatchNorm'", phase=phase)
        with_stats(layer, [0.1, 0.2], [1.0, 2.0], 1.0)
        bottom = Blob(x.shape, np.float64)
        bottom.data[...] = x
        top = bottom if in_place else Blob((), np.float64)
        layer.setup([bottom], [top])
        layer.forward([bottom], [top])
        y = top.data.copy()
        top.diff[...] = dy
        layer.backward([top], [True], [bottom])
        out.append((y, bottom.diff.copy(), [b.diff.copy() for b in layer.blobs]))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-14)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-12)
    assert not any(d.any() for d in out[1][2])  # no gradient for the statistics


def test_batch_norm_channel_change_is_a_config_error():
    layer = make_layer("type: 'BatchNorm'")
    bottom, top = setup_layer(layer, [np.zeros((2, 3))])
    bottom[0].reshape(2, 4)
    with pytest.raises(ConfigError, match="bottom"):
        layer.reshape(bottom, top)


def test_batch_norm_train_matches_bvlc_caffe(conformance):
    layer, ref = caffe_layer(conformance, "layer_zoo_a", "bn_train")
    layer.blobs = [Blob((6,), np.float32), Blob((6,), np.float32), Blob((1,), np.float32)]
    for blob, v in zip(layer.blobs, (1.0, 2.0, 1.0)):  # the fixture's starting statistics
        blob.data[...] = v
    b, t = setup_layer(layer, [ref["data/conv0"]])
    layer.forward(b, t)
    assert_caffe_close(t[0].data, ref["data/bn_train"])
    for j in range(3):
        assert_caffe_close(layer.blobs[j].data, ref[f"param/bn_train/{j}"])


def test_batch_norm_global_matches_bvlc_caffe(conformance):
    layer, ref = caffe_layer(conformance, "layer_zoo_a", "bn_global")
    layer.blobs = [Blob(ref[f"param/bn_global/{j}"].shape, np.float32) for j in range(3)]
    for j, blob in enumerate(layer.blobs):
        blob.data[...] = ref[f"param/bn_global/{j}"]
    b, t = setup_layer(layer, [ref["data/conv_dil"]])
    layer.forward(b, t)
    assert_caffe_close(t[0].data, ref["data/bn_global"])


@pytest.mark.gpu
@pytest.mark.parametrize("phase", [TRAIN, TEST])
def test_batch_norm_cpu_gpu_parity(phase):
    x = np.random.default_rng(6).standard_normal((4, 3, 5, 5))
    assert_cpu_gpu_parity("type: 'BatchNorm'", phase=phase, bottoms=[x], rtol=1e-10, atol=1e-12)
