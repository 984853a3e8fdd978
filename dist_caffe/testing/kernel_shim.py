"""Run kernels/*.cu on the CPU: g++ through kernels/cpu_shim.h, called with ctypes.

Each .cu file (as `kernels.kernel_source` gives it, headers inlined) is compiled once per
source hash into a shared library cached in a temp folder; its extern "C" kernels run as one
block of one thread on numpy arrays, through the same argument checks (`kernels.launch`)
as on the GPU:

    SHIM.call("neurons.cu", "neurons_relu_forward", x.size, x, y, 0.1)

`shim_as_gpu()` lets a layer's forward_gpu / backward_gpu (which call `kernels.call`) run on
CPU blobs, and `assert_gpu_override_matches` compares them with the layer's own xp path.
"""
import contextlib
import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .. import kernels, rng
from ..blob import Blob
from ..errors import KernelError

CXX_FLAGS = ("-x", "c++", "-std=c++17", "-O2", "-fPIC", "-shared", "-Wall", "-Werror")
_CTYPES = {np.dtype(np.int32): ctypes.c_int32, np.dtype(np.float32): ctypes.c_float,
           np.dtype(np.float64): ctypes.c_double}


def cache_dir() -> Path:
    path = Path(os.environ.get("DIST_CAFFE_SHIM_CACHE", Path(tempfile.gettempdir()) / "dist_caffe_shim"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def compiler():
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise KernelError(f"the kernel shim needs a C++ compiler: '{cxx}' is not on PATH "
                          "(apt-get install g++, or set CXX)")
    return cxx


@functools.lru_cache(maxsize=None)
def build(filename: str) -> Path:
    """Compile kernels/<filename> with the shim; returns the cached shared library."""
    source = kernels.kernel_source(filename)
    shim = kernels.kernel_dir() / "cpu_shim.h"
    key = hashlib.sha256("\0".join([source, shim.read_text(), compiler(), *CXX_FLAGS]).encode())
    lib = cache_dir() / f"{Path(filename).stem}-{key.hexdigest()[:20]}.so"
    if lib.is_file():
        return lib
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        src, out = Path(tmp) / filename, Path(tmp) / lib.name
        src.write_text(source)
        cmd = [compiler(), *CXX_FLAGS, "-include", str(shim), str(src), "-o", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise KernelError(f"g++ could not compile {filename} through the shim:\n"
                              f"{' '.join(cmd)}\n{done.stderr[-6000:]}")
        os.replace(out, lib)  # atomic: parallel test runs may build the same file
    return lib


def _to_ctypes(a):
    if isinstance(a, np.ndarray):
        return ctypes.c_void_p(a.ctypes.data)
    return _CTYPES[np.dtype(type(a))](a)


class ShimLibrary(kernels.Library):
    """Kernels compiled by g++ through the CPU shim; arrays are numpy arrays."""

    array_type = (np.ndarray,)

    @functools.lru_cache(maxsize=None)
    def library(self, filename):
        return ctypes.CDLL(str(build(filename)))

    def _load(self, filename, name):
        fn = getattr(self.library(filename), name)
        fn.restype = None

        def run(blocks, threads, args, stream=None):
            fn(*[_to_ctypes(a) for a in args])
        return run


SHIM = ShimLibrary()


@contextlib.contextmanager
def shim_as_gpu():
    """Within the block `kernels.call` runs through the shim on numpy arrays, so a layer's
    forward_gpu / backward_gpu, called directly, run on CPU blobs. Yields the list of the
    kernel names launched (in order), so a test can tell a kernel path from an xp fallback."""
    launched, original = [], kernels.call

    def call(filename, name, n, *args, stream=None):
        launched.append(name)
        SHIM.call(filename, name, n, *args)

    kernels.call = call
    try:
        yield launched
    finally:
        kernels.call = original


def _run_layer_paths(make_layer, bottoms, gpu, in_place, propagate_down, top_diffs, params,
                     passes, seed):
    """Forward + backward `passes` times on fresh blobs; returns ({what: array}, kernel names,
    the layer). gpu: the override through the shim, else the xp path untouched."""
    layer = make_layer()
    bottom = [Blob(np.shape(a), layer.dtype) for a in bottoms]
    for b, a in zip(bottom, bottoms):
        b.data[...] = a
    num_top = max(len(layer.param.top), layer.exact_num_top or layer.min_top or 1)
    top = [Blob((), layer.dtype) for _ in range(num_top)]
    if in_place:
        top[0] = bottom[0]
    rng.set_random_seed(seed)
    layer.setup(bottom, top)
    for blob, value in zip(layer.blobs, params or []):
        blob.data[...] = value
    down = [True] * len(bottom) if propagate_down is None else list(propagate_down)
    forward, backward = ((layer.forward_gpu, layer.backward_gpu) if gpu else
                         (layer.forward, layer.backward))
    kernel_path = shim_as_gpu if gpu else lambda: contextlib.nullcontext([])
    out, launched = {}, {"forward": [], "backward": []}
    for k in range(passes):
        for b, a in zip(bottom, bottoms):   # in place, the last pass overwrote bottom 0
            b.data[...] = a
        for b in bottom:
            b.diff[...] = np.nan            # a bottom not propagated to must stay untouched
        for b in layer.blobs:
            b.diff[...] = 0.5               # parameter gradients accumulate (+=)
        rng.set_random_seed(seed + k)
        with kernel_path() as calls:
            forward(bottom, top)
        launched["forward"] += calls
        for i, t in enumerate(top):
            out[f"pass {k} top[{i}].data"] = t.data.copy()
        if layer.has_backward:
            g = np.random.default_rng(seed + 100 + k)
            for i, t in enumerate(top):
                t.diff[...] = (top_diffs[i] if top_diffs is not None
                               else g.standard_normal(t.shape))
            with kernel_path() as calls:
                backward(top, down, bottom)
            launched["backward"] += calls
            for i, b in enumerate(bottom):
                out[f"pass {k} bottom[{i}].diff"] = b.diff.copy()
        for j, b in enumerate(layer.blobs):
            out[f"pass {k} blobs[{j}].data"] = b.data.copy()
            out[f"pass {k} blobs[{j}].diff"] = b.diff.copy()
    return out, launched, layer


def assert_gpu_override_matches(make_layer, bottoms, *, in_place=False, propagate_down=None,
                                top_diffs=None, params=None, passes=2, seed=0, rtol=1e-10,
                                atol=1e-12):
    """Run a fresh `make_layer()` through its forward/backward (the xp reference) and another
    through forward_gpu/backward_gpu with the g++ shim standing in for the GPU, on the same
    inputs, and assert that every top, bottom diff, blob and blob diff agrees, over `passes`
    iterations (state such as running averages carries over). The override must launch at least
    one kernel in forward and, when the layer has a backward, in backward: a layer without
    overrides (the base class's xp fallback) fails. Returns {"forward": [...], "backward": [...]},
    the kernel names the override launched.

    bottoms: numpy arrays; in_place: top[0] is bottom[0]; propagate_down: default all True;
    top_diffs: the gradients set on the tops (default Gaussian; a loss top's diff is its weight);
    params: values for the layer's blobs after setup (default: whatever setup made).
    """
    args = (in_place, propagate_down, top_diffs, params, passes, seed)
    want, _, _ = _run_layer_paths(make_layer, bottoms, False, *args)
    got, launched, layer = _run_layer_paths(make_layer, bottoms, True, *args)
    assert want.keys() == got.keys()
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=atol, err_msg=(
            f"forward_gpu/backward_gpu differ from forward/backward at {key}"))
    assert launched["forward"], "forward_gpu launched no kernel: the layer has no GPU override"
    if layer.has_backward and (propagate_down is None or any(propagate_down)):
        assert launched["backward"], \
            "backward_gpu launched no kernel: the layer has no GPU override"
    return launched
