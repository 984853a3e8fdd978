"""kernels/eltwise.cu against numpy, MAX ties as in Caffe's CPU layer."""
import numpy as np
import pytest

from .conftest import tol

F = "eltwise.cu"


@pytest.mark.parametrize("n", [1, 31, 2049])
def test_sum_with_coefficients(dev, dtype, n):
    rng = np.random.default_rng(n)
    xs = [rng.standard_normal(n).astype(dtype) for _ in range(3)]
    coeff = [1.0, -0.5, 2.5]
    y = dev.put(np.full(n, np.nan, dtype))
    for i, (x, c) in enumerate(zip(xs, coeff)):
        dev.lib.call(F, "eltwise_sum_forward", n, dev.put(x), c, int(i > 0), y)
    np.testing.assert_allclose(dev.get(y), sum(c * x.astype(np.float64) for x, c in zip(xs, coeff)),
                               **tol(dtype, 5))


@pytest.mark.parametrize("n", [1, 31, 2049])
def test_prod_and_its_gradients(dev, dtype, n):
    rng = np.random.default_rng(n + 1)
    xs = [(rng.uniform(0.5, 2, n) * rng.choice([-1, 1], n)).astype(dtype) for _ in range(3)]
    y = dev.put(np.full(n, np.nan, dtype))
    for i, x in enumerate(xs):
        dev.lib.call(F, "eltwise_prod_forward", n, dev.put(x), int(i > 0), y)
    x64 = [x.astype(np.float64) for x in xs]
    np.testing.assert_allclose(dev.get(y), x64[0] * x64[1] * x64[2], **tol(dtype, 5))
    dy = rng.standard_normal(n).astype(dtype)
    dx, = dev.run(F, "eltwise_prod_backward", n, dy, dev.get(y), xs[1], np.zeros(n, dtype))[3:]
    np.testing.assert_allclose(dx, dy * x64[0] * x64[2], **tol(dtype, 10))


def test_max_ties_follow_caffes_cpu_layer(dev):
    # columns: 0 wins; 0/1 tie -> 1; 1/2 tie -> 1 (a later bottom needs strictly more); 2 wins
    xs = [np.array([3, 1, 0, 0], np.float32), np.array([1, 1, 5, 0], np.float32),
          np.array([2, 0, 5, 9], np.float32)]
    y, mask = dev.put(np.zeros(4, np.float32)), dev.put(np.full(4, -7, np.int32))
    for i, x in enumerate(xs):
        dev.lib.call(F, "eltwise_max_forward", 4, dev.put(x), i, y, mask)
    np.testing.assert_array_equal(dev.get(y), [3, 1, 5, 9])
    np.testing.assert_array_equal(dev.get(mask), [0, 1, 1, 2])


@pytest.mark.parametrize("n,k", [(1, 2), (100, 2), (1001, 4)])
def test_max_forward_backward(dev, dtype, n, k):
    rng = np.random.default_rng(n * k)
    xs = [rng.standard_normal(n).astype(dtype) for _ in range(k)]
    y, mask = dev.put(np.zeros(n, dtype)), dev.put(np.zeros(n, np.int32))
    for i, x in enumerate(xs):
        dev.lib.call(F, "eltwise_max_forward", n, dev.put(x), i, y, mask)
    stack = np.stack(xs)
    np.testing.assert_array_equal(dev.get(y), stack.max(axis=0))
    np.testing.assert_array_equal(dev.get(mask), stack.argmax(axis=0))
    dy = rng.standard_normal(n).astype(dtype)
    for i in range(k):
        dx, = dev.run(F, "eltwise_max_backward", n, dy, dev.get(mask), i, np.full(n, np.nan, dtype))[2:]
        np.testing.assert_array_equal(dx, np.where(stack.argmax(axis=0) == i, dy, 0))
