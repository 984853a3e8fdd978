"""The exceptions users see: each names the file, layer, field and the fix."""


class DistCaffeError(Exception):
    """Base class of every error dist_caffe raises on purpose."""


class ConfigError(DistCaffeError, ValueError):
    """A prototxt, solver, caffemodel or command-line value is wrong."""


class DataError(DistCaffeError):
    """A data source (LMDB, image, mean file) is missing or corrupt."""


class KernelError(DistCaffeError, RuntimeError):
    """The GPU backend (CuPy, a CUDA kernel, NCCL) is unavailable or failed."""
