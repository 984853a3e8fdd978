"""A finite-difference gradient checker for any layer (float64 recommended).

The objective is L = sum_i <top_i.data, R_i> with fixed random R_i, so the analytic
gradient is the layer's backward with top diffs R_i; each checked element of every
bottom and every learnable blob is perturbed by +-step and the central difference
compared with it.
"""
import numpy as np
from google.protobuf import text_format

from .. import rng
from ..blob import Blob
from ..layer import TRAIN, create_layer
from ..proto import caffe_pb2


def make_layer(text, phase=TRAIN, dtype=np.float64, name="layer"):
    """Build a layer from the text of a LayerParameter, e.g. "type: 'ReLU'"."""
    param = text_format.Parse(text, caffe_pb2.LayerParameter())
    if not param.name:
        param.name = name
    return create_layer(param, phase=phase, dtype=dtype)


def setup_layer(layer, bottoms, num_top=None, seed=0):
    """Wrap arrays in Blobs, create the tops and set the layer up; returns (bottom, top)."""
    bottom = []
    for a in bottoms:
        b = Blob(np.shape(a), layer.dtype)
        b.data[...] = a
        bottom.append(b)
    if num_top is None:
        num_top = max(len(layer.param.top), layer.exact_num_top or layer.min_top or 1)
    top = [Blob((), layer.dtype) for _ in range(num_top)]
    rng.set_random_seed(seed)
    layer.setup(bottom, top)
    return bottom, top


def run_layer(layer, bottoms, num_top=None, seed=0):
    """Set up and run forward once; returns the top arrays (copies)."""
    bottom, top = setup_layer(layer, bottoms, num_top, seed)
    rng.set_random_seed(seed)
    layer.reshape(bottom, top)
    layer.run_forward(bottom, top)
    return [t.data.copy() for t in top]


def _objective(layer, bottom, top, weights, seed):
    rng.set_random_seed(seed)  # the same dropout mask / random draw every pass
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    return sum(float(np.vdot(t.data, w)) for t, w in zip(top, weights))


def check_gradient(layer, bottom_shapes=None, bottoms=None, check_bottom=None, check_params=True,
                   step=1e-5, threshold=1e-5, kink=None, kink_range=1e-3, max_checks=120,
                   num_top=None, seed=1701, fill=None):
    """Assert the layer's backward matches finite differences for bottoms and params.

    bottoms: arrays to feed (else Gaussian arrays of bottom_shapes, or fill(shape) per shape).
    check_bottom: indices of bottoms to check (default all); kink: skip elements within
    kink_range of a point where the function is not differentiable (ReLU's 0, ...).
    At most `max_checks` randomly chosen elements per blob are perturbed.
    """
    g = np.random.default_rng(seed)
    if bottoms is None:
        bottoms = [(fill or g.standard_normal)(s) for s in bottom_shapes]
    bottom, top = setup_layer(layer, bottoms, num_top, seed)
    weights = [g.standard_normal(t.shape) for t in top]
    check_bottom = range(len(bottom)) if check_bottom is None else check_bottom

    _objective(layer, bottom, top, weights, seed)
    for t, w in zip(top, weights):
        t.diff[...] = w
    for b in layer.blobs:
        b.diff[...] = 0
    propagate = [i in check_bottom for i in range(len(bottom))]
    layer.backward(top, propagate, bottom)
    targets = [(f"bottom[{i}]", bottom[i], bottom[i].diff.copy()) for i in check_bottom]
    if check_params:
        targets += [(f"blobs[{j}]", b, b.diff.copy()) for j, b in enumerate(layer.blobs)
                    if layer.param_propagate_down[j]]

    failures = []
    for label, blob, analytic in targets:
        data = blob.data.reshape(-1)
        picks = np.arange(data.size)
        if data.size > max_checks:
            picks = g.choice(data.size, max_checks, replace=False)
        for k in picks:
            x = data[k]
            if kink is not None and abs(x - kink) < kink_range:
                continue
            data[k] = x + step
            plus = _objective(layer, bottom, top, weights, seed)
            data[k] = x - step
            minus = _objective(layer, bottom, top, weights, seed)
            data[k] = x
            numeric, exact = (plus - minus) / (2 * step), analytic.reshape(-1)[k]
            scale = max(abs(numeric), abs(exact), 1.0)
            if abs(numeric - exact) > threshold * scale:
                failures.append(f"{label}[{np.unravel_index(k, blob.shape)}]: "
                                f"analytic {exact:.8g} vs numeric {numeric:.8g}")
    _objective(layer, bottom, top, weights, seed)  # leave the layer in a consistent state
    assert not failures, f"{layer}: gradient check failed at {len(failures)} element(s):\n" + \
        "\n".join(failures[:20])
