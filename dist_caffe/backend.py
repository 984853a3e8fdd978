"""The only module that imports cupy: array-module selection, mode and device.

Layers are written once over ``xp`` (numpy or cupy); ``get_array_module`` picks it from
the arrays they are handed, so the numpy path is always the reference.
"""
import functools

import numpy as np

from .errors import KernelError

CPU, GPU = "CPU", "GPU"
_state = {"mode": CPU, "device": 0}


@functools.lru_cache(maxsize=None)
def _cupy():
    try:
        import cupy
    except Exception:  # ImportError, or a CUDA driver error raised at import
        return None
    return cupy


@functools.lru_cache(maxsize=None)
def has_gpu() -> bool:
    """True when cupy imports and sees at least one CUDA device."""
    cp = _cupy()
    try:
        return bool(cp is not None and cp.is_available())
    except Exception:
        return False


def require_cupy():
    """Return the cupy module, or raise KernelError saying how to get a GPU build."""
    if not has_gpu():
        raise KernelError(
            "GPU mode needs CuPy and a CUDA device, and none was found "
            "(install the gpu extra: pip install 'dist_caffe[gpu]' on a machine with an NVIDIA GPU; "
            "or run on the CPU: drop -gpu / call set_mode_cpu())")
    return _cupy()


def set_mode_cpu():
    _state["mode"] = CPU


def set_mode_gpu():
    require_cupy()
    _state["mode"] = GPU


def mode() -> str:
    return _state["mode"]


def set_device(device_id: int):
    _state["device"] = int(device_id)
    if has_gpu():
        _cupy().cuda.Device(int(device_id)).use()


def device() -> int:
    return _state["device"]


def get_array_module(*arrays):
    """numpy or cupy, whichever owns the arrays (numpy when cupy is absent)."""
    cp = _cupy()
    if cp is not None:
        return cp.get_array_module(*arrays)
    return np


def is_gpu_array(a) -> bool:
    cp = _cupy()
    return cp is not None and isinstance(a, cp.ndarray)


def xp_for_mode():
    """The array module of the current mode."""
    return require_cupy() if _state["mode"] == GPU else np


def to_cpu(a):
    """A numpy array with a's values (no copy when a already is one)."""
    return a.get() if is_gpu_array(a) else np.asarray(a)


def to_gpu(a):
    """A cupy array with a's values on the current device."""
    return require_cupy().asarray(a)


def copy_into(dst, src):
    """dst[...] = src across devices (a no-op when both are the same array)."""
    if dst is src:
        return
    if is_gpu_array(dst) and not is_gpu_array(src):
        dst.set(np.ascontiguousarray(src, dtype=dst.dtype).reshape(dst.shape))
    elif is_gpu_array(src) and not is_gpu_array(dst):
        dst[...] = src.get()
    else:
        dst[...] = src
