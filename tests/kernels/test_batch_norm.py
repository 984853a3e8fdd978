"""kernels/batch_norm.cu against numpy per-channel statistics; the backward against central
differences of the whole normalisation (statistics included)."""
import numpy as np
import pytest

from .conftest import numeric_grad, tol

F = "batch_norm.cu"


def normalize(x, eps):
    mean = x.mean(axis=(0, 2), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(0, 2), keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


# (num, channels, spatial)
SHAPES = [(1, 1, 1), (2, 3, 5), (7, 1, 1), (4, 16, 9), (1, 5, 300), (64, 3, 1), (3, 2, 1000)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_mean_var_and_normalize(dev, dtype, shape):
    num, c, s = shape
    x = (np.random.default_rng(c * s).standard_normal(shape) * 3 + 5).astype(dtype)
    mean, var = dev.run(F, "batch_norm_mean_var", c, x, num, c, s, np.zeros(c, dtype), np.zeros(c, dtype))[1:]
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), **tol(dtype, 5))
    np.testing.assert_allclose(var, x64.var(axis=(0, 2)), **tol(dtype, 20))
    y, = dev.run(F, "batch_norm_normalize", x.size, x, mean, var, 1e-5, c, s, np.zeros(shape, dtype))[3:]
    np.testing.assert_allclose(y, normalize(x64, 1e-5), **tol(dtype, 20))


@pytest.mark.parametrize("shape", [(2, 3, 5), (4, 2, 1), (1, 2, 7), (3, 1, 4)], ids=str)
def test_backward_matches_differences(dev, dtype, shape):
    num, c, s = shape
    eps = 1e-3
    rng = np.random.default_rng(num * c * s)
    x64, dy64 = rng.standard_normal(shape), rng.standard_normal(shape)
    expected = numeric_grad(lambda v: normalize(v, eps), x64, dy64)
    x, dy = x64.astype(dtype), dy64.astype(dtype)
    mean, var = dev.run(F, "batch_norm_mean_var", c, x, num, c, s, np.zeros(c, dtype), np.zeros(c, dtype))[1:]
    y, = dev.run(F, "batch_norm_normalize", x.size, x, mean, var, eps, c, s, np.zeros(shape, dtype))[3:]
    mdy, mdyy = dev.run(F, "batch_norm_backward_stats", c, dy, y, num, c, s, np.zeros(c, dtype),
                        np.zeros(c, dtype))[2:]
    np.testing.assert_allclose(mdy, dy64.mean(axis=(0, 2)), **tol(dtype, 5))
    dx, = dev.run(F, "batch_norm_backward", x.size, dy, y, mdy, mdyy, var, eps, c, s, 0,
                  np.full(shape, np.nan, dtype))[5:]
    t = dict(rtol=1e-3, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx, expected, **t)


def test_backward_with_global_stats_is_a_fixed_scaling(dev, dtype):
    rng = np.random.default_rng(0)
    dy = rng.standard_normal((2, 3, 4)).astype(dtype)
    var = np.array([0.5, 2.0, 4.0], dtype)
    nan = np.full(3, np.nan, dtype)  # must not be read
    dx, = dev.run(F, "batch_norm_backward", dy.size, dy, np.zeros_like(dy), nan, nan, var, 1e-5, 3, 4, 1,
                  np.zeros_like(dy))[5:]
    np.testing.assert_allclose(dx, dy / np.sqrt(var.astype(np.float64)[None, :, None] + 1e-5), **tol(dtype))
