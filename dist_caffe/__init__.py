"""dist_caffe: Caffe-compatible deep learning, data-parallel over MPI, NCCL and Ray.

The pycaffe surface: ``import dist_caffe as caffe``; ``caffe.Net(prototxt, weights,
caffe.TEST)``, ``caffe.get_solver(path)``, ``caffe.SGDSolver(path)``, ``caffe.set_mode_cpu()``,
``caffe.io``, ``caffe.NetSpec`` / ``caffe.layers`` / ``caffe.params``. (``caffe.layers`` is the
package of layer modules; its module-level ``__getattr__`` hands NetSpec's layer factory
out for CamelCase type names, so ``from dist_caffe import layers as L`` works as in pycaffe.)
"""
import importlib

from .backend import set_device, set_mode_cpu, set_mode_gpu
from .blob import Blob
from .errors import ConfigError, DataError, DistCaffeError, KernelError
from .layer import TEST, TRAIN, Layer, layer_types, register_layer
from .net import Net
from .rng import set_random_seed

__version__ = "0.1.0"

# Loaded on first use, so `import dist_caffe` stays light and each part can be absent.
_LAZY = {
    "get_solver": ("dist_caffe.solvers", "get_solver"),
    "SGDSolver": ("dist_caffe.solvers", "SGDSolver"),
    "NesterovSolver": ("dist_caffe.solvers", "NesterovSolver"),
    "AdaGradSolver": ("dist_caffe.solvers", "AdaGradSolver"),
    "RMSPropSolver": ("dist_caffe.solvers", "RMSPropSolver"),
    "AdaDeltaSolver": ("dist_caffe.solvers", "AdaDeltaSolver"),
    "AdamSolver": ("dist_caffe.solvers", "AdamSolver"),
    "io": ("dist_caffe.io", None),
    "NetSpec": ("dist_caffe.net_spec", "NetSpec"),
    "params": ("dist_caffe.net_spec", "params"),
    "to_proto": ("dist_caffe.net_spec", "to_proto"),
    "proto": ("dist_caffe.proto", None),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'dist_caffe' has no attribute '{name}'")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)


__all__ = ["Blob", "ConfigError", "DataError", "DistCaffeError", "KernelError", "Layer", "Net",
           "TEST", "TRAIN", "layer_types", "register_layer", "set_device", "set_mode_cpu",
           "set_mode_gpu", "set_random_seed"] + list(_LAZY)
