"""Fillers: initial values of learnable blobs, from a FillerParameter (Caffe's filler.hpp)."""
import numpy as np

from . import backend, rng
from .errors import ConfigError

FAN_IN, FAN_OUT, AVERAGE = 0, 1, 2  # FillerParameter.VarianceNorm


def _fan(shape, variance_norm):
    count = int(np.prod(shape))
    fan_in = count // shape[0]
    fan_out = count // shape[1] if len(shape) > 1 else count
    return {FAN_IN: fan_in, FAN_OUT: fan_out, AVERAGE: (fan_in + fan_out) / 2.0}[variance_norm]


def _bilinear(shape):
    if len(shape) != 4 or shape[2] != shape[3]:
        raise ConfigError(f"bilinear filler needs a 4-D blob with square kernels, got {shape}")
    f = np.ceil(shape[3] / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    y, x = np.meshgrid(np.arange(shape[2]), np.arange(shape[3]), indexing="ij")
    kernel = (1 - np.abs(x / f - c)) * (1 - np.abs(y / f - c))
    return np.broadcast_to(kernel, shape)


def fill_values(filler, shape, generator=None):
    """A float64 numpy array of `shape` drawn as `filler` (a FillerParameter) says."""
    g = generator or rng.generator()
    shape, kind = tuple(shape), filler.type
    if filler.sparse >= 0 and kind != "gaussian":
        raise ConfigError(f"filler '{kind}': sparse is only supported by the gaussian filler")
    if int(np.prod(shape)) == 0:
        return np.zeros(shape)
    if kind == "constant":
        return np.full(shape, filler.value)
    if kind == "uniform":
        if filler.min > filler.max:
            raise ConfigError(f"uniform filler: min {filler.min} > max {filler.max}; swap them")
        return g.uniform(filler.min, filler.max, shape)
    if kind == "gaussian":
        values = g.normal(filler.mean, filler.std, shape)
        if filler.sparse >= 0:
            if len(shape) < 1:
                raise ConfigError("sparse gaussian filler needs a blob with at least one axis")
            # Each output unit keeps on average `sparse` non-zero inputs.
            values *= g.random(shape) < filler.sparse / shape[0]
        return values
    if kind == "positive_unitball":
        values = g.uniform(0, 1, shape).reshape(shape[0], -1)
        return (values / values.sum(axis=1, keepdims=True)).reshape(shape)
    if kind == "xavier":
        scale = np.sqrt(3.0 / _fan(shape, filler.variance_norm))
        return g.uniform(-scale, scale, shape)
    if kind == "msra":
        return g.normal(0.0, np.sqrt(2.0 / _fan(shape, filler.variance_norm)), shape)
    if kind == "bilinear":
        return np.array(_bilinear(shape))
    raise ConfigError(f"unknown filler type '{kind}' (known: bilinear, constant, gaussian, msra, "
                      "positive_unitball, uniform, xavier)")


def fill(blob, filler):
    """Fill blob.data from a FillerParameter."""
    backend.copy_into(blob.data, fill_values(filler, blob.shape).astype(blob.dtype))
    return blob
