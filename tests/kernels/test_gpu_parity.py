"""What only a GPU can show. Every family test (test_<family>.py) already runs each kernel
through cupy against the numpy reference (its `gpu` parameter); here: every kernel compiles
through NVRTC exactly as at run time, and launches with many blocks (grid-stride loops,
256-thread block reductions, other streams) agree with numpy and with the g++ shim."""
import numpy as np
import pytest

from dist_caffe import backend, kernels
from dist_caffe.testing.kernel_shim import SHIM

pytestmark = pytest.mark.gpu
FILES = sorted(p.name for p in kernels.kernel_dir().glob("*.cu"))


@pytest.fixture(scope="module")
def cp():
    return backend.require_cupy()


@pytest.mark.parametrize("filename", FILES)
def test_every_kernel_loads_through_nvrtc(cp, filename):
    for name, (real, _, _) in kernels.signatures(filename).items():
        k = kernels.get_function(filename, name)
        assert k.name == name and k.real == real


def both(filename, name, n, *args):
    """Run on the GPU and through the shim; returns (gpu arrays, shim arrays) as numpy."""
    cp = backend.require_cupy()
    gpu = [cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
    shim = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    kernels.call(filename, name, n, *gpu)
    SHIM.call(filename, name, n, *shim)
    pick = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]
    return [cp.asnumpy(gpu[i]) for i in pick], [shim[i] for i in pick]


def test_many_blocks_elementwise(cp):
    n = 3_000_017  # > 5000 blocks of 512, not a multiple of either
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    (_, y), (_, y_cpu) = both("neurons.cu", "neurons_relu_forward", n, x, np.zeros(n, np.float32), 0.1)
    np.testing.assert_array_equal(y, np.where(x > 0, x, x * np.float32(0.1)))
    np.testing.assert_array_equal(y, y_cpu)


def test_block_reductions_with_many_threads(cp):
    num, c, s = 16, 5, 4099  # m = 65584 values per channel spread over 256 threads
    x = (np.random.default_rng(1).standard_normal((num, c, s)) * 2 + 3).astype(np.float32)
    (_, mean, var), _ = both("batch_norm.cu", "batch_norm_mean_var", c, x, num, c, s,
                             np.zeros(c, np.float32), np.zeros(c, np.float32))
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=(0, 2)), rtol=1e-4)
    dy = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    (_, _, dslope), (_, _, dslope_cpu) = both("neurons.cu", "neurons_prelu_slope_backward", c, x, dy,
                                              np.ones(c, np.float32), num, c, s)
    np.testing.assert_allclose(dslope, dslope_cpu, rtol=1e-4)


def test_im2col_and_pooling_at_imagenet_sizes(cp):
    x = np.random.default_rng(3).standard_normal((2, 3, 227, 227)).astype(np.float32)
    hc = (227 - 11) // 4 + 1
    (_, col), (_, col_cpu) = both("im2col.cu", "im2col_im2col", 2 * 3 * hc * hc, x, 3, 227, 227, 11, 11,
                                  0, 0, 4, 4, 1, 1, hc, hc, 363 * hc * hc, hc * hc, 1,
                                  np.zeros((2, 363, hc * hc), np.float32))
    np.testing.assert_array_equal(col, col_cpu)
    p = 27
    (_, y, mask), (_, y_cpu, mask_cpu) = both(
        "pooling.cu", "pooling_max_forward", 2 * 3 * p * p, x[:, :, :55, :55].copy(), 55, 55, p, p,
        3, 3, 2, 2, 0, 0, np.zeros(2 * 3 * p * p, np.float32), np.zeros(2 * 3 * p * p, np.int32))
    np.testing.assert_array_equal(y, y_cpu)
    np.testing.assert_array_equal(mask, mask_cpu)


def test_softmax_loss_at_imagenet_batch(cp):
    x = np.random.default_rng(4).standard_normal((256, 1000, 1)).astype(np.float32)
    (_, p), (_, p_cpu) = both("softmax.cu", "softmax_forward", 256, x, 1000, 1, np.zeros_like(x))
    np.testing.assert_allclose(p, p_cpu, rtol=1e-5, atol=1e-9)


def test_launch_on_another_stream(cp):
    stream = cp.cuda.Stream(non_blocking=True)
    x = cp.arange(-10, 10, dtype=cp.float32)
    y = cp.zeros_like(x)
    kernels.call("neurons.cu", "neurons_absval_forward", x.size, x, y, stream=stream)
    stream.synchronize()
    np.testing.assert_array_equal(cp.asnumpy(y), np.abs(np.arange(-10, 10)))


def test_solver_update_over_a_large_flat_buffer(cp):
    n = 1_000_003
    offsets = np.array([0, 10, 500_000, n], np.int32)
    rng = np.random.default_rng(5)
    w, g = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    (w_gpu, g_gpu, h_gpu, *_), (w_cpu, g_cpu, h_cpu, *_) = both(
        "solver_updates.cu", "solver_updates_sgd", n, w, g, np.zeros(n, np.float32), 0.1, 0.9, 1.0, 5e-4, 0,
        3, offsets, np.array([1, 2, 0], np.float32), np.array([1, 0, 1], np.float32))
    np.testing.assert_allclose(w_gpu, w_cpu, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h_gpu, h_cpu, rtol=1e-6, atol=1e-7)
