"""Layer base class and the self-filling registry of layer types.

The contract (Caffe's): `setup` once (checks blob counts, `layer_setup`, `reshape`, loss
weights), then `reshape` + `forward` every pass, and `backward` when needed.

* `forward(bottom, top)` writes `top[i].data`.
* `backward(top, propagate_down, bottom)` **writes** `bottom[i].diff` where
  `propagate_down[i]` and **accumulates** (`+=`) into its own `self.blobs[j].diff` when
  `self.param_propagate_down[j]`: the net clears parameter diffs once per iteration, so
  shared weights and `iter_size` passes sum their gradients.
* In-place layers (top[0] is bottom[0]) must read what they need before overwriting it.
* Loss layers: `top[0].diff` holds the loss weight when backward starts (Caffe's trick).
* Write the body once over `xp = get_array_module(...)`; override `forward_gpu`/`backward_gpu`
  only to call a custom kernel.
"""
import numpy as np

from . import backend
from .errors import ConfigError

TRAIN, TEST = 0, 1  # caffe_pb2.Phase values
_REGISTRY = {}


def register_layer(cls):
    """Class decorator: make `cls.type` buildable from a prototxt."""
    if not cls.type:
        raise TypeError(f"{cls.__name__} has no `type`")
    _REGISTRY[cls.type] = cls
    return cls


def layer_types():
    """Every registered layer type name, sorted."""
    _discover()
    return sorted(_REGISTRY)


def _discover():
    # Importing the package imports every module in it, and each registers itself.
    from . import layers  # noqa: F401


def layer_class(param, where=""):
    _discover()
    cls = _REGISTRY.get(param.type)
    if cls is None:
        raise ConfigError(f"{where}layer '{param.name}': unknown type '{param.type}' "
                          f"(known: {', '.join(sorted(_REGISTRY))}); type names are case-sensitive")
    return cls


def create_layer(param, phase=TRAIN, dtype=np.float32, where=""):
    """Build the layer a LayerParameter describes (ConfigError for an unknown type)."""
    return layer_class(param, where)(param, phase=phase, dtype=dtype)


class Layer:
    """Base of every layer. Subclasses set `type` and the blob-count limits below."""

    type = ""
    exact_num_bottom = min_bottom = max_bottom = None
    exact_num_top = min_top = max_top = None
    equal_num_bottom_top = False
    auto_top_blobs = False     # may create missing tops up to min/exact_num_top
    has_backward = True        # False: asking for its backward is a ConfigError (Accuracy, ArgMax)
    in_place = True            # False: a top may not be one of the bottoms

    def __init__(self, param, phase=TRAIN, dtype=np.float32):
        self.param = param
        self.phase = phase
        self.dtype = np.dtype(dtype)
        self.name = param.name
        self.blobs = []                      # learnable (and state) blobs, e.g. [weight, bias]
        if param.blobs:  # values stored in the LayerParameter itself, as Caffe's constructor loads
            from .blob import Blob
            self.blobs = [Blob((), dtype).from_proto(b) for b in param.blobs]
        self.param_propagate_down = []       # one flag per blob
        self.loss_weights = []               # one per top

    # -- helpers for subclasses ---------------------------------------------
    def error(self, field, message):
        """ConfigError naming this layer and the field."""
        return ConfigError(f"layer '{self.name}' (type {self.type}): {field}: {message}")

    def new_blob(self, shape):
        from .blob import Blob
        return Blob(shape, self.dtype)

    @property
    def rng(self):
        from . import rng
        return rng.generator()

    # -- the contract --------------------------------------------------------
    def allow_force_backward(self, bottom_index):
        """Caffe's AllowForceBackward: may force_backward reach this bottom?"""
        return True

    def setup(self, bottom, top):
        self.check_blob_counts(bottom, top)
        if not self.in_place and any(t is b for t in top for b in bottom):
            raise self.error("top", "this layer cannot compute in place; give its top a name "
                                    "of its own")
        self.layer_setup(bottom, top)
        self.reshape(bottom, top)
        self.set_loss_weights(top)
        while len(self.param_propagate_down) < len(self.blobs):
            self.param_propagate_down.append(True)

    def layer_setup(self, bottom, top):
        """One-time set-up: read params, create `self.blobs`."""

    def reshape(self, bottom, top):
        raise NotImplementedError(f"{type(self).__name__}.reshape")

    def forward(self, bottom, top):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, top, propagate_down, bottom):
        if any(propagate_down):
            raise NotImplementedError(f"{type(self).__name__}.backward")

    def forward_gpu(self, bottom, top):
        return self.forward(bottom, top)

    def backward_gpu(self, top, propagate_down, bottom):
        return self.backward(top, propagate_down, bottom)

    def run_forward(self, bottom, top):
        """Forward on the blobs' device; returns this layer's weighted loss."""
        on_gpu = bool(top) and top[0].gpu or bool(bottom) and bottom[0].gpu
        (self.forward_gpu if on_gpu else self.forward)(bottom, top)
        loss = 0.0
        for blob, w in zip(top, self.loss_weights):
            if w:
                xp = backend.get_array_module(blob.data)
                loss += float(xp.vdot(blob.data.ravel(), blob.diff.ravel()))
        return loss

    def run_backward(self, top, propagate_down, bottom):
        on_gpu = bool(top) and top[0].gpu or bool(bottom) and bottom[0].gpu
        (self.backward_gpu if on_gpu else self.backward)(top, propagate_down, bottom)

    # -- bookkeeping ---------------------------------------------------------
    def set_loss_weights(self, top):
        weights = list(self.param.loss_weight)
        if weights and len(weights) != len(top):
            raise self.error("loss_weight", f"{len(weights)} values for {len(top)} tops; "
                                            "give one loss_weight per top")
        if not weights and self.type.endswith("Loss"):
            weights = [1.0] + [0.0] * (len(top) - 1)
        self.loss_weights = weights + [0.0] * (len(top) - len(weights))
        for blob, w in zip(top, self.loss_weights):
            if w:
                blob.diff[...] = w

    def check_blob_counts(self, bottom, top):
        nb, nt = len(bottom), len(top)
        checks = [(self.exact_num_bottom, nb, "exactly", "bottom", lambda e, n: e == n),
                  (self.min_bottom, nb, "at least", "bottom", lambda e, n: n >= e),
                  (self.max_bottom, nb, "at most", "bottom", lambda e, n: n <= e),
                  (self.exact_num_top, nt, "exactly", "top", lambda e, n: e == n),
                  (self.min_top, nt, "at least", "top", lambda e, n: n >= e),
                  (self.max_top, nt, "at most", "top", lambda e, n: n <= e)]
        for expected, found, word, what, ok in checks:
            if expected is not None and not ok(expected, found):
                raise self.error(what, f"takes {word} {expected} {what} blob(s), found {found}")
        if self.equal_num_bottom_top and nb != nt:
            raise self.error("top", f"needs as many tops as bottoms ({nb}), found {nt}")

    def __repr__(self):
        return f"<{type(self).__name__} '{self.name}'>"


class NeuronLayer(Layer):
    """One bottom, one top of the same shape (may be in place)."""

    exact_num_bottom = exact_num_top = 1

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])


class LossLayer(Layer):
    """Two bottoms (prediction, target), a scalar top; no gradient to the target by default."""

    exact_num_bottom, min_top, max_top = 2, 1, 1

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1

    def reshape(self, bottom, top):
        if bottom[0].shape[:1] != bottom[1].shape[:1]:
            raise self.error("bottom", f"the two inputs need the same num (first axis): "
                                       f"{bottom[0].shape} vs {bottom[1].shape}")
        top[0].reshape(())
