"""Custom CUDA kernels: kernels/*.cu, compiled once per process by NVRTC (cupy.RawModule).

Each kernel is declared in its .cu file with a DC_KERNEL* macro (kernels/common.cuh), so its
parameter list can be read from the source. `launch` uses it to convert and check every
argument before the bytes reach the GPU, where a wrong type or a missing argument is read
silently: ints become int32, `T` scalars float32/float64 (the kernel's `_f`/`_d` variant),
pointers must be C-contiguous arrays of that dtype (int32 for `int*`).

    kernels.call("neurons.cu", "neurons_relu_forward", x.size, x, y, 0.1)

picks `neurons_relu_forward_f` or `_d` from x's dtype and launches Caffe's grid
(CAFFE_GET_BLOCKS: 512 threads per block). The g++ shim in `dist_caffe.testing.kernel_shim`
runs the same kernels through the same `launch`, so CI tests these call paths too.
"""
import functools
import re
from pathlib import Path

import numpy as np

from . import backend
from .errors import KernelError

CUDA_NUM_THREADS = 512           # Caffe's CAFFE_CUDA_NUM_THREADS
REDUCE_THREADS = 256             # DC_REDUCE_THREADS in kernels/common.cuh
MAX_BLOCKS = (2**31 - 1) // CUDA_NUM_THREADS  # keeps blocks * threads within int
MAX_COUNT = 2**31 - 1            # kernels index with int, as Caffe's
NVRTC_OPTIONS = ("-std=c++17",)

_DECL = re.compile(r"\b(DC_(?:BLOCK_)?KERNEL(?:_FD)?)\s*\(\s*(\w+)\s*,\s*\(([^()]*)\)")
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.M)
_PRAGMA_ONCE = re.compile(r"^\s*#\s*pragma\s+once\s*$", re.M)  # inlined once already
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_KINDS = {"int": "int", "T": "real", "T*": "real*", "int*": "int*"}


def kernel_dir() -> Path:
    """The folder of the .cu sources: kernels/ of a source checkout, else the installed
    package dist_caffe._kernels beside this module (pyproject maps kernels/ there)."""
    here = Path(__file__).resolve().parent
    for folder in (here.parent / "kernels", here / "_kernels"):
        if (folder / "common.cuh").is_file():
            return folder
    raise KernelError(f"the CUDA kernel sources (kernels/*.cu) are missing: neither {here.parent / 'kernels'} "
                      f"nor {here / '_kernels'} has them; reinstall dist_caffe "
                      "(pip install --force-reinstall dist_caffe)")


@functools.lru_cache(maxsize=None)
def kernel_source(filename: str) -> str:
    """The text of kernels/<filename> with its local #include "x" files inlined (#line kept),
    so the compiler's cache key covers the headers too."""
    path = kernel_dir() / filename
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in kernel_dir().glob("*.cu")))
        raise KernelError(f"no kernel file '{filename}' in {kernel_dir()} (known: {known})")
    text, out, seen = path.read_text(), [], set()
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _INCLUDE.match(line)
        if m and (kernel_dir() / m.group(1)).is_file():
            if m.group(1) not in seen:
                seen.add(m.group(1))
                header = _PRAGMA_ONCE.sub("", (kernel_dir() / m.group(1)).read_text())
                out += [f'#line 1 "{m.group(1)}"', header]
            out.append(f'#line {lineno + 1} "{filename}"')
        else:
            out.append(line)
    return "\n".join(out) + "\n"


class Param:
    """One declared kernel parameter: its name and kind (int, real, real*, int*)."""

    def __init__(self, name, kind):
        self.name, self.kind = name, kind

    def __repr__(self):
        return f"{self.kind} {self.name}"


class Kernel:
    """One extern "C" kernel: its name, real type T, parameters, and how to run it.

    `run(blocks, threads, args)` is supplied by a library: a cupy RawKernel launch on the
    GPU, a ctypes call in the shim. `per_block`: one block of REDUCE_THREADS per item of n.
    """

    def __init__(self, name, real, params, per_block, run, array_type):
        self.name, self.real, self.params = name, np.dtype(real), params
        self.per_block, self.run, self.array_type = per_block, run, array_type

    def __repr__(self):
        return f"Kernel({self.name}({', '.join(map(repr, self.params))}))"


@functools.lru_cache(maxsize=None)
def signatures(filename: str) -> dict:
    """{exported name: (real dtype, [Param], per_block)} of every kernel kernels/<filename>
    declares (comments stripped; a parameter of another type is a KernelError)."""
    out = {}
    for macro, name, params in _DECL.findall(_COMMENT.sub("", (kernel_dir() / filename).read_text())):
        parsed = []
        for decl in params.split(","):
            words = decl.replace("*", " * ").replace("__restrict__", " ").split()
            words = [w for w in words if w != "const"]
            if len(words) < 2 or "".join(words[:-1]) not in _KINDS:
                raise KernelError(f"{filename}: kernel {name}: parameter '{decl.strip()}' is not "
                                  f"one of {', '.join(_KINDS)}")
            parsed.append(Param(words[-1], _KINDS["".join(words[:-1])]))
        if not parsed or parsed[0].kind != "int":
            raise KernelError(f"{filename}: kernel {name}: the first parameter must be `int n`")
        per_block = "BLOCK" in macro
        variants = [("_f", np.float32), ("_d", np.float64)] if macro.endswith("_FD") else [("", np.float32)]
        for suffix, real in variants:
            out[name + suffix] = (np.dtype(real), parsed, per_block)
    return out


def exported_name(filename, name, dtype=None):
    """`name` itself when the file defines it, else name_f / name_d for dtype."""
    sigs = signatures(filename)
    if name in sigs:
        return name
    suffix = {np.dtype(np.float32): "_f", np.dtype(np.float64): "_d"}.get(
        np.dtype(dtype) if dtype is not None else None)
    if suffix and name + suffix in sigs:
        return name + suffix
    raise KernelError(f"{filename} has no kernel '{name}' for dtype {dtype} "
                      f"(it has: {', '.join(sorted(sigs))})")


def infer_dtype(args):
    """The dtype of the first floating-point array among args (None when there is none)."""
    for a in args:
        dtype = getattr(a, "dtype", None)
        if getattr(a, "ndim", 0) and dtype is not None and dtype.kind == "f":
            return dtype
    return None


def marshal(kernel, args):
    """args (n excluded) converted to the kernel's declared types, or a KernelError."""
    params = kernel.params[1:]
    if len(args) != len(params):
        raise KernelError(f"{kernel.name} takes {len(params)} arguments after n "
                          f"({', '.join(map(repr, params))}), {len(args)} given")
    out = []
    for p, a in zip(params, args):
        where = f"{kernel.name}: argument '{p.name}'"
        is_array = isinstance(a, kernel.array_type)
        if p.kind.endswith("*"):
            want = kernel.real if p.kind == "real*" else np.dtype(np.int32)
            if not is_array:
                raise KernelError(f"{where} must be a {kernel.array_type[0].__module__} array "
                                  f"of {want}, got {type(a).__name__}")
            if a.dtype != want or not a.flags.c_contiguous:
                raise KernelError(f"{where} must be a C-contiguous array of {want}, got "
                                  f"{a.dtype}{'' if a.flags.c_contiguous else ' (not contiguous)'}")
            out.append(a)
        elif is_array or not np.isscalar(a) or isinstance(a, (str, bytes)):
            raise KernelError(f"{where} must be a scalar ({p.kind}), got {type(a).__name__}")
        elif p.kind == "int":
            if not isinstance(a, (int, np.integer, bool, np.bool_)) or not -2**31 <= int(a) < 2**31:
                raise KernelError(f"{where} must be an int32 integer, got {a!r}")
            out.append(np.int32(a))
        else:
            out.append(kernel.real.type(a))
    return tuple(out)


def get_blocks(n, threads=CUDA_NUM_THREADS):
    """Caffe's CAFFE_GET_BLOCKS, capped so that blocks * threads fits an int."""
    return max(1, min((n + threads - 1) // threads, MAX_BLOCKS))


def launch(kernel, n, args=(), stream=None):
    """Run `kernel` over n items: n is passed as its first argument, then args (converted
    by `marshal`). Grid: Caffe's, or one block of REDUCE_THREADS per item (BLOCK kernels).
    A stream (cupy) runs it there instead of on the current stream."""
    n = int(n)
    if not 0 <= n <= MAX_COUNT:
        raise KernelError(f"{kernel.name}: n = {n} is outside [0, 2^31): kernels index with "
                          "int as Caffe's do; split the work into smaller launches")
    args = marshal(kernel, args)
    if n == 0:
        return
    if kernel.per_block:
        blocks, threads = min(n, 65535), REDUCE_THREADS
    else:
        blocks, threads = get_blocks(n), CUDA_NUM_THREADS
    kernel.run(blocks, threads, (np.int32(n),) + args, stream)


class Library:
    """Where kernels come from. Subclasses give `array_type` and `_load(filename, name)`
    (a function run(blocks, threads, args, stream))."""

    array_type = (np.ndarray,)

    @functools.lru_cache(maxsize=None)
    def get_function(self, filename, name, dtype=None) -> Kernel:
        """The kernel `name` (or its _f/_d variant for dtype) of kernels/<filename>."""
        full = exported_name(filename, name, dtype)
        real, params, per_block = signatures(filename)[full]
        return Kernel(full, real, params, per_block, self._load(filename, full), self.array_type)

    def call(self, filename, name, n, *args, stream=None):
        """launch(get_function(filename, name, dtype of the first float array), n, args)."""
        launch(self.get_function(filename, name, infer_dtype(args)), n, args, stream)

    def _load(self, filename, name):
        raise NotImplementedError


class GpuLibrary(Library):
    """Kernels compiled by NVRTC through cupy.RawModule(code=...), once per file and process."""

    @property
    def array_type(self):
        return (backend.require_cupy().ndarray,)

    @functools.lru_cache(maxsize=None)
    def module(self, filename):
        cp = backend.require_cupy()
        return cp.RawModule(code=kernel_source(filename), options=NVRTC_OPTIONS)

    def _load(self, filename, name):
        try:  # NVRTC runs here, at the first get_function of the module
            fn = self.module(filename).get_function(name)
        except Exception as e:
            if type(e).__name__ != "CompileException":
                raise
            raise KernelError(f"NVRTC could not compile kernels/{filename} "
                              f"(options {' '.join(NVRTC_OPTIONS)}):\n{e}") from None

        def run(blocks, threads, args, stream=None):
            if stream is None:
                fn((blocks,), (threads,), args)
            else:
                with stream:
                    fn((blocks,), (threads,), args)
        return run


GPU = GpuLibrary()


def get_function(filename, name, dtype=None) -> Kernel:
    """The GPU kernel `name` of kernels/<filename> (KernelError without a GPU)."""
    return GPU.get_function(filename, name, None if dtype is None else np.dtype(dtype))


def call(filename, name, n, *args, stream=None):
    """Launch GPU kernel `name` of kernels/<filename> over n items with args (see module doc)."""
    GPU.call(filename, name, n, *args, stream=stream)
