"""The kernel tests run each body twice: through the g++ shim (always) and through cupy on a
GPU (`gpu` marker, skipped without one), against the same numpy reference."""
import numpy as np
import pytest

from dist_caffe import backend, kernels
from dist_caffe.testing.kernel_shim import SHIM


class Device:
    """Uploads numpy arrays, launches a kernel, downloads the results."""

    def __init__(self, kind):
        self.kind = kind
        self.lib = SHIM if kind == "shim" else kernels.GPU
        self.xp = np if kind == "shim" else backend.require_cupy()

    def put(self, a):
        return np.array(a, order="C", copy=True) if self.xp is np else self.xp.asarray(a).copy()

    def get(self, a):
        return backend.to_cpu(a).copy()

    def run(self, filename, name, n, *args):
        """Launch with numpy args uploaded; returns every array argument afterwards (numpy)."""
        dev = [self.put(a) if isinstance(a, np.ndarray) else a for a in args]
        self.lib.call(filename, name, n, *dev)
        if self.xp is not np:
            self.xp.cuda.get_current_stream().synchronize()
        return [self.get(d) for a, d in zip(args, dev) if isinstance(a, np.ndarray)]


@pytest.fixture(params=["shim", pytest.param("gpu", marks=pytest.mark.gpu)])
def dev(request):
    return Device(request.param)


@pytest.fixture(params=[np.float32, np.float64], ids=["f", "d"])
def dtype(request):
    return np.dtype(request.param)


def tol(dtype, scale=1.0):
    """assert_allclose tolerances for a dtype (float32 kernels vs float64 references)."""
    return (dict(rtol=2e-5 * scale, atol=2e-6 * scale) if np.dtype(dtype) == np.float32
            else dict(rtol=1e-11 * scale, atol=1e-12 * scale))


def numeric_grad(f, x, dy, step=1e-6):
    """d/dx of sum(f(x) * dy) by central differences (float64)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + step
        up = np.sum(f(x) * dy)
        flat[i] = keep - step
        down = np.sum(f(x) * dy)
        flat[i] = keep
        gflat[i] = (up - down) / (2 * step)
    return g
