"""kernels/dropout.cu against numpy: keep where u < 1 - ratio, scale by 1 / (1 - ratio)."""
import numpy as np
import pytest

F = "dropout.cu"


@pytest.mark.parametrize("n", [1, 17, 5000])
@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.9])
def test_forward_backward(dev, dtype, n, ratio):
    rng = np.random.default_rng(n)
    x, dy = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    u = rng.uniform(size=n).astype(dtype)
    keep, scale = 1 - ratio, 1 / (1 - ratio)
    kept = u < dtype.type(keep)
    y, = dev.run(F, "dropout_forward", n, x, u, keep, scale, np.full(n, np.nan, dtype))[2:]
    np.testing.assert_array_equal(y, np.where(kept, x * dtype.type(scale), 0))
    dx, = dev.run(F, "dropout_backward", n, dy, u, keep, scale, np.full(n, np.nan, dtype))[2:]
    np.testing.assert_array_equal(dx, np.where(kept, dy * dtype.type(scale), 0))
    if n == 5000 and ratio:
        assert abs(1 - kept.mean() - ratio) < 0.03  # the draws do what the ratio says


def test_boundary_draws(dev):
    """u exactly at keep drops (u < keep keeps), u = 0 keeps even for ratio 0."""
    u = np.array([0.0, 0.5, np.nextafter(0.5, 0, dtype=np.float32)], np.float32)
    y, = dev.run(F, "dropout_forward", 3, np.ones(3, np.float32), u, 0.5, 2.0, np.zeros(3, np.float32))[2:]
    np.testing.assert_array_equal(y, [2, 0, 2])
