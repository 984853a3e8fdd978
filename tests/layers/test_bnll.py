"""BNLL: softplus log(1 + exp(x)) without overflow."""
import numpy as np
import pytest

from dist_caffe import backend
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


def test_bnll_forward_matches_numpy_and_does_not_overflow():
    x = np.array([-800.0, -30.0, -1.0, 0.0, 0.5, 30.0, 800.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        (y,) = run_layer(make_layer("type: 'BNLL'"), [x])
    ref = np.array([np.log1p(np.exp(v)) if v < 30 else v + np.log1p(np.exp(-v)) for v in x])
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (6,)])
def test_bnll_gradient(shape):
    check_gradient(make_layer("type: 'BNLL'"), bottom_shapes=[shape])


def test_bnll_gradient_is_sigmoid():
    x = np.array([-3.0, 0.0, 2.0, 60.0])
    layer = make_layer("type: 'BNLL'")
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    top[0].diff[...] = 2.0
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, 2 / (1 + np.exp(-np.minimum(x, 50))))


def test_bnll_bad_config_names_field():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'BNLL'"), [])


@pytest.mark.gpu
def test_bnll_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'BNLL'", [np.random.default_rng(2).standard_normal((2, 3, 4))])
