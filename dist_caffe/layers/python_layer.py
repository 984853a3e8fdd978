"""Python: a layer written in Python by the user, as pycaffe runs it."""
import importlib
import traceback

import numpy as np

from ..blob import Blob
from ..errors import ConfigError
from ..layer import TRAIN, Layer, register_layer


class BlobVec(list):
    """The list of a Python layer's learnable blobs; `add_blob(*shape)` appends a new one
    (pycaffe's BlobVec.add_blob)."""

    def __init__(self, dtype, blobs=()):
        super().__init__(blobs)
        self.dtype = dtype

    def add_blob(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        blob = Blob(shape, self.dtype)
        self.append(blob)
        return blob


class HostBlob:
    """A device blob seen from the host, as pycaffe always shows blobs to Python layers:
    .data and .diff are numpy arrays (reading syncs from the GPU, writing moves the head to
    the host, and the next GPU read copies back). Everything else is the blob's."""

    def __init__(self, blob):
        self._blob = blob

    @property
    def data(self):
        return self._blob.mutable_cpu_data()

    @data.setter
    def data(self, value):
        self._blob.mutable_cpu_data()[...] = value

    @property
    def diff(self):
        return self._blob.mutable_cpu_diff()

    @diff.setter
    def diff(self, value):
        self._blob.mutable_cpu_diff()[...] = value

    def __getattr__(self, name):
        return getattr(self._blob, name)


class UserBlobs:
    """What a Python layer sees as self.blobs: the layer's BlobVec, GPU blobs shown through
    HostBlob views; add_blob appends to the real list (which the net learns)."""

    def __init__(self, blobs):
        self._blobs = blobs

    def add_blob(self, *shape):
        self._blobs.add_blob(*shape)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return _host_view(self._blobs[i])
        b = self._blobs[i]
        return HostBlob(b) if b.gpu else b

    def __len__(self):
        return len(self._blobs)

    def __iter__(self):
        return iter(_host_view(list(self._blobs)))


def _host_view(blobs):
    return [HostBlob(b) if getattr(b, "gpu", False) else b for b in blobs]


def _python_error(layer, stage, exc):
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" ({tb[-1].filename}:{tb[-1].lineno})" if tb else ""
    return ConfigError(f"layer '{layer.name}' (type Python, python_param.module "
                       f"'{layer.param.python_param.module}', layer "
                       f"'{layer.param.python_param.layer}'): {stage} raised "
                       f"{type(exc).__name__}: {exc}{where}")


@register_layer
class PythonLayer(Layer):
    """Runs `python_param.layer`, a class in module `python_param.module` (importable from
    sys.path / PYTHONPATH), subclassing dist_caffe.Layer as pycaffe layers subclass
    caffe.Layer. The instance is made with the LayerParameter, gets `param_str` (from
    python_param.param_str), `phase` and `blobs` (a BlobVec: `self.blobs.add_blob(*shape)` adds
    a learnable blob), then its `setup(bottom, top)`, `reshape(bottom, top)`,
    `forward(bottom, top)` and `backward(top, propagate_down, bottom)` run in turn. Blobs
    offer pycaffe's .data .diff .shape .count .num .channels .height .width .reshape(*shape);
    in GPU mode .data and .diff are host (numpy) arrays, as in pycaffe.

    An import failure, a missing class, or an exception in setup is a ConfigError naming the
    layer and the Python error. python_param.share_in_parallel is accepted and ignored.
    """

    type = "Python"

    def __init__(self, param, phase=TRAIN, dtype=np.float32):
        super().__init__(param, phase=phase, dtype=dtype)
        self.impl = self._instantiate()
        self.blobs = BlobVec(self.dtype)
        self.impl.param_str = param.python_param.param_str
        self.impl.phase = phase
        self.impl.blobs = UserBlobs(self.blobs)

    def _instantiate(self):
        p = self.param.python_param
        if not p.module or not p.layer:
            raise self.error("python_param", "needs both module and layer, e.g. python_param { "
                                             "module: 'pyloss' layer: 'EuclideanLossLayer' }")
        try:
            module = importlib.import_module(p.module)
        except Exception as e:
            raise ConfigError(f"layer '{self.name}' (type Python): cannot import python_param.module"
                              f" '{p.module}': {type(e).__name__}: {e} (is its directory on "
                              "PYTHONPATH / sys.path?)") from e
        cls = getattr(module, p.layer, None)
        if cls is None:
            raise self.error("python_param.layer", f"module '{p.module}' ({module.__file__}) has no "
                                                   f"class '{p.layer}'")
        try:
            return cls(self.param)
        except Exception as e:
            raise _python_error(self, f"creating {p.layer}", e) from e

    def layer_setup(self, bottom, top):
        if type(self.impl).setup is Layer.setup:
            return  # pycaffe's base setup does nothing
        self._call("setup", bottom, top, config=True)

    def reshape(self, bottom, top):
        self._call("reshape", bottom, top, config=True)

    def forward(self, bottom, top):
        self._call("forward", bottom, top)

    def backward(self, top, propagate_down, bottom):
        self._call("backward", top, list(propagate_down), bottom)

    def _call(self, method, *args, config=False):
        """Run the user's method (GPU blobs shown through host views); set-up errors become
        ConfigErrors, others get a note naming the layer."""
        args = [_host_view(a) if isinstance(a, list) and a and hasattr(a[0], "diff") else a
                for a in args]
        try:
            getattr(self.impl, method)(*args)
        except ConfigError:
            raise
        except Exception as e:
            if config:
                raise _python_error(self, f"{method}()", e) from e
            e.add_note(f"in {method}() of Python layer '{self.name}' "
                       f"({self.param.python_param.module}.{self.param.python_param.layer})")
            raise
