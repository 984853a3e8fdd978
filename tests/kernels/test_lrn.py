"""kernels/lrn.cu against a direct windowed-sum LRN in numpy; the backward against central
differences of that forward (float64) and against its closed form (float32)."""
import numpy as np
import pytest

from .conftest import numeric_grad, tol

F = "lrn.cu"


def ref_scale(x, size, alpha, k):
    c = x.shape[1]
    pre = (size - 1) // 2
    sq = x.astype(np.float64) ** 2
    scale = np.empty(x.shape)
    for ch in range(c):
        lo, hi = max(ch - pre, 0), min(ch + size - pre, c)
        scale[:, ch] = k + alpha / size * sq[:, lo:hi].sum(axis=1)
    return scale


def ref_forward(x, size, alpha, beta, k):
    return x * ref_scale(x, size, alpha, k) ** -beta


# (num, C, H, W), local_size, alpha, beta, k
CASES = [
    ((1, 1, 1, 1), 5, 1e-4, 0.75, 1.0),
    ((2, 7, 3, 4), 5, 1e-4, 0.75, 1.0),      # CaffeNet norm1 settings
    ((1, 3, 5, 5), 5, 0.5, 0.75, 2.0),       # fewer channels than post_pad + 1
    ((2, 2, 3, 3), 7, 0.3, 0.6, 1.5),        # window wider than the channels
    ((1, 16, 2, 3), 3, 2.0, 0.5, 1.0),
    ((3, 5, 1, 7), 1, 1.0, 1.0, 0.5),        # size 1: pointwise
]


def run(dev, x, size, alpha, beta, k):
    num, c, h, w = x.shape
    dtype = x.dtype
    scale, = dev.run(F, "lrn_fill_scale", num * h * w, x, c, h, w, size, alpha / size, k,
                     np.full(x.shape, np.nan, dtype))[1:]
    y, = dev.run(F, "lrn_compute_output", x.size, x, scale, -beta, np.full(x.shape, np.nan, dtype))[2:]
    return scale, y


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_forward(dev, dtype, case):
    shape, size, alpha, beta, k = case
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(dtype)
    scale, y = run(dev, x, size, alpha, beta, k)
    np.testing.assert_allclose(scale, ref_scale(x, size, alpha, k), **tol(dtype, 5))
    np.testing.assert_allclose(y, ref_forward(x.astype(np.float64), size, alpha, beta, k), **tol(dtype, 5))


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_backward(dev, dtype, case):
    shape, size, alpha, beta, k = case
    rng = np.random.default_rng(sum(shape) + 1)
    x64, dy64 = rng.standard_normal(shape), rng.standard_normal(shape)
    expected = numeric_grad(lambda v: ref_forward(v, size, alpha, beta, k), x64, dy64)
    x, dy = x64.astype(dtype), dy64.astype(dtype)
    scale, y = run(dev, x, size, alpha, beta, k)
    num, c, h, w = shape
    dx, = dev.run(F, "lrn_compute_diff", num * h * w, x, y, scale, dy, c, h, w, size, -beta,
                  2 * alpha * beta / size, np.full(shape, np.nan, dtype))[4:]
    t = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(dx, expected, **t)
