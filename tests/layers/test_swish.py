"""Swish: x sigmoid(beta x)."""
import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.testing import check_gradient, make_layer, run_layer, setup_layer


def assert_cpu_gpu_parity(text, bottoms, down=None, seed=0):
    """Forward and backward of the layer `text` (float64) agree on the CPU and the GPU."""
    def run():
        layer = make_layer(text)
        bottom, top = setup_layer(layer, bottoms, seed=seed)
        layer.reshape(bottom, top)
        layer.run_forward(bottom, top)
        for k, t in enumerate(top):
            t.diff = np.random.default_rng(k).standard_normal(t.shape)
        flags = [True] * len(bottom) if down is None else down
        layer.run_backward(top, flags, bottom)
        arrays = [t.data for t in top] + [b.diff for b, f in zip(bottom, flags) if f]
        return [backend.to_cpu(a) for a in arrays + [b.diff for b in layer.blobs]]

    cpu = run()
    backend.set_mode_gpu()
    try:
        gpu = run()
    finally:
        backend.set_mode_cpu()
    for a, b in zip(cpu, gpu, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0])
def test_swish_forward_matches_numpy(beta):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)) * 4
    (y,) = run_layer(make_layer(f"type: 'Swish' swish_param {{ beta: {beta} }}"), [x])
    np.testing.assert_allclose(y, x / (1 + np.exp(-beta * x)), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0])
def test_swish_gradient(beta):
    check_gradient(make_layer(f"type: 'Swish' swish_param {{ beta: {beta} }}"),
                   bottom_shapes=[(2, 3, 4, 5)])


def test_swish_in_place_gradient():
    g = np.random.default_rng(1)
    x, dy = g.standard_normal(8), g.standard_normal(8)
    blob, layer = Blob(x.shape, np.float64), make_layer("type: 'Swish'")
    blob.data[...] = x
    layer.setup([blob], [blob])
    layer.forward([blob], [blob])
    blob.diff[...] = dy
    layer.backward([blob], [True], [blob])
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(blob.diff, dy * (s + x * s * (1 - s)))


def test_swish_bad_config_names_field():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'Swish'"), [np.ones(2), np.ones(2)])


@pytest.mark.gpu
def test_swish_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'Swish' swish_param { beta: 1.5 }",
                          [np.random.default_rng(2).standard_normal((2, 3, 4))])
