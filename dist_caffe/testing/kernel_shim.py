"""Run kernels/*.cu on the CPU: g++ through kernels/cpu_shim.h, called with ctypes.

Each .cu file (as `kernels.kernel_source` gives it, headers inlined) is compiled once per
source hash into a shared library cached in a temp folder; its extern "C" kernels run as one
block of one thread on numpy arrays, through the same argument checks (`kernels.launch`)
as on the GPU:

    SHIM.call("neurons.cu", "neurons_relu_forward", x.size, x, y, 0.1)
"""
import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .. import kernels
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
