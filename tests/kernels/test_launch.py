"""dist_caffe.kernels: source lookup, signature parsing, argument checks, Caffe's grid."""
import re

import numpy as np
import pytest

from dist_caffe import backend, kernels
from dist_caffe.errors import KernelError
from dist_caffe.testing.kernel_shim import SHIM


class Recorder:
    """A Kernel's `run` that records the launch instead of running it."""

    def __init__(self):
        self.calls = []

    def __call__(self, blocks, threads, args, stream=None):
        self.calls.append((blocks, threads, args))


def fake(filename, name, run):
    real, params, per_block = kernels.signatures(filename)[name]
    return kernels.Kernel(name, real, params, per_block, run, (np.ndarray,))


def test_kernel_dir_is_the_checkouts_kernels_folder():
    assert (kernels.kernel_dir() / "common.cuh").is_file()
    assert {p.name for p in kernels.kernel_dir().glob("*.cu")} >= {"im2col.cu", "pooling.cu"}


def test_source_inlines_the_header_once_with_line_markers():
    src = kernels.kernel_source("neurons.cu")
    assert "#define CUDA_KERNEL_LOOP" in src and '#include "common.cuh"' not in src
    assert '#line 1 "common.cuh"' in src and re.search(r'#line \d+ "neurons.cu"', src)
    assert "pragma once" not in src


def test_unknown_file_and_kernel_name_the_known_ones():
    with pytest.raises(KernelError, match="known: .*im2col.cu"):
        kernels.kernel_source("nope.cu")
    with pytest.raises(KernelError, match="it has: .*neurons_relu_forward_f"):
        kernels.exported_name("neurons.cu", "neurons_rleu_forward", np.float32)


def test_reduce_threads_match_the_header():
    header = (kernels.kernel_dir() / "common.cuh").read_text()
    assert f"#define DC_REDUCE_THREADS {kernels.REDUCE_THREADS}" in header
    assert kernels.REDUCE_THREADS & (kernels.REDUCE_THREADS - 1) == 0  # a power of two


@pytest.mark.parametrize("filename", sorted(p.name for p in kernels.kernel_dir().glob("*.cu")))
def test_every_file_declares_kernels_with_parsable_signatures(filename):
    sigs = kernels.signatures(filename)
    assert sigs, f"{filename} declares no DC_KERNEL"
    family = filename[:-3]
    for name, (real, params, _) in sigs.items():
        assert name.startswith(family + "_"), f"{name} breaks the <family>_<op> naming"
        assert params[0].kind == "int" and all(p.kind in ("int", "real", "real*", "int*") for p in params)
        assert real in (np.float32, np.float64)


def test_variants_and_dtype_inference():
    assert kernels.exported_name("neurons.cu", "neurons_tanh_forward", np.float64) == "neurons_tanh_forward_d"
    assert kernels.exported_name("neurons.cu", "neurons_tanh_forward_f") == "neurons_tanh_forward_f"
    assert kernels.infer_dtype([3, np.zeros(2, np.int32), np.zeros(2, np.float64)]) == np.float64
    assert kernels.infer_dtype([1.0]) is None


def test_marshal_converts_scalars_to_the_declared_types():
    run = Recorder()
    k = fake("neurons.cu", "neurons_elu_backward_f", run)
    a = [np.zeros(4, np.float32) for _ in range(4)]
    kernels.launch(k, 4, (*a, 1))  # alpha given as a Python int: sent as float32
    (blocks, threads, args), = run.calls
    assert (blocks, threads) == (1, 512)
    assert type(args[0]) is np.int32 and args[0] == 4
    assert type(args[-1]) is np.float32 and args[-1] == 1.0
    k = fake("pooling.cu", "pooling_max_forward_d", run)
    kernels.launch(k, 5, (np.zeros(9), *[3] * 10, np.zeros(5), np.zeros(5, np.int32)))
    assert all(type(v) is np.int32 for v in run.calls[-1][2][2:12])


@pytest.mark.parametrize("args,message", [
    ((np.zeros(4, np.float32),), "takes 2 arguments after n"),
    ((np.zeros(4, np.float64), np.zeros(4, np.float32)), "'x' must be a C-contiguous array of float32, got float64"),
    ((np.zeros(8, np.float32)[::2], np.zeros(4, np.float32)), "not contiguous"),
    ((1.0, np.zeros(4, np.float32)), "'x' must be a numpy array"),
    ((np.zeros(4, np.float32), np.zeros(4, np.float32), 1), "takes 2 arguments"),
])
def test_marshal_rejects_what_the_gpu_would_misread(args, message):
    k = fake("neurons.cu", "neurons_sigmoid_forward_f", Recorder())
    with pytest.raises(KernelError, match=message):
        kernels.launch(k, 4, args)


def test_marshal_checks_ints_and_int_arrays():
    k = fake("pooling.cu", "pooling_max_backward_f", Recorder())
    f = np.zeros(4, np.float32)
    good = [f, np.zeros(4, np.int32)] + [1] * 10 + [f]
    with pytest.raises(KernelError, match="'height' must be an int32 integer, got 2.5"):
        kernels.launch(k, 4, good[:2] + [2.5] + good[3:])
    with pytest.raises(KernelError, match="'height' must be an int32 integer"):
        kernels.launch(k, 4, good[:2] + [2**31] + good[3:])
    with pytest.raises(KernelError, match="'mask' must be a C-contiguous array of int32, got int64"):
        kernels.launch(k, 4, [f, np.zeros(4, np.int64)] + good[2:])
    with pytest.raises(KernelError, match="'pad_w' must be a scalar"):
        kernels.launch(k, 4, good[:11] + [f] + good[12:])


def test_grid_is_caffes_and_capped():
    assert kernels.get_blocks(1) == 1 and kernels.get_blocks(512) == 1 and kernels.get_blocks(513) == 2
    assert kernels.get_blocks(2**31 - 1) * kernels.CUDA_NUM_THREADS <= 2**31 - 1


def test_block_kernels_get_one_block_per_item_and_empty_launches_do_nothing():
    run = Recorder()
    k = fake("batch_norm.cu", "batch_norm_mean_var_f", run)
    f = np.zeros(6, np.float32)
    kernels.launch(k, 3, (f, 1, 3, 2, f, f))
    assert run.calls[-1][:2] == (3, kernels.REDUCE_THREADS)
    kernels.launch(k, 0, (f, 1, 3, 2, f, f))
    assert len(run.calls) == 1
    with pytest.raises(KernelError, match="outside"):
        kernels.launch(k, 2**31, (f, 1, 3, 2, f, f))


def test_shim_runs_grid_stride_loops_over_every_index():
    x = np.arange(-5000, 5000, dtype=np.float32)
    y = np.zeros_like(x)
    SHIM.call("neurons.cu", "neurons_relu_forward", x.size, x, y, 0.0)
    np.testing.assert_array_equal(y, np.maximum(x, 0))


@pytest.mark.skipif(backend.has_gpu(), reason="checks the message given without a GPU")
def test_gpu_kernels_without_a_gpu_raise_a_clear_kernel_error():
    with pytest.raises(KernelError, match="GPU mode needs CuPy and a CUDA device"):
        kernels.get_function("neurons.cu", "neurons_relu_forward", np.float32)
    with pytest.raises(KernelError, match="set_mode_cpu"):
        kernels.call("neurons.cu", "neurons_relu_forward", 1, np.zeros(1, np.float32),
                     np.zeros(1, np.float32), 0.0)
