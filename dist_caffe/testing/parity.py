"""CPU/GPU parity: one layer run on both devices with the same inputs must agree."""
import numpy as np

from .. import backend, rng
from ..layer import TRAIN, Layer, create_layer
from .gradient_check import make_layer, setup_layer


def _factory(layer, dtype, phase):
    """A function that builds a fresh layer from text, from a Layer's param, or `layer` itself."""
    if isinstance(layer, str):
        return lambda: make_layer(layer, phase=phase, dtype=dtype)
    if isinstance(layer, Layer):
        return lambda: create_layer(layer.param, phase=layer.phase, dtype=layer.dtype)
    return layer


def _run(build, bottoms, propagate_down, num_top, params, seed):
    """Forward, then backward from Gaussian top diffs, in the current mode.
    Returns ({what: numpy array}, the values of the layer's blobs after setup, its dtype)."""
    layer = build()
    bottom, top = setup_layer(layer, bottoms, num_top, seed)
    for blob, value in zip(layer.blobs, params or []):
        blob.data = value
    values = [backend.to_cpu(b.data).copy() for b in layer.blobs]
    rng.set_random_seed(seed)  # the same dropout mask / stochastic draw on both devices
    layer.reshape(bottom, top)
    layer.run_forward(bottom, top)
    out = {f"top[{i}].data": t.data for i, t in enumerate(top)}
    if layer.has_backward:
        down = [True] * len(bottom) if propagate_down is None else list(propagate_down)
        g = np.random.default_rng(seed + 1)
        for t in top:
            t.diff = g.standard_normal(t.shape)
        for b in layer.blobs:
            b.diff[...] = 0
        layer.run_backward(top, down, bottom)
        out.update({f"bottom[{i}].diff": b.diff for i, b in enumerate(bottom) if down[i]})
        out.update({f"blobs[{j}].diff": b.diff for j, b in enumerate(layer.blobs)})
    return {k: backend.to_cpu(a).copy() for k, a in out.items()}, values, layer.dtype


def assert_cpu_gpu_parity(layer, bottom_shapes=None, bottoms=None, *, propagate_down=None,
                          num_top=None, dtype=np.float64, phase=TRAIN, rtol=None, atol=None,
                          seed=0):
    """Run a fresh layer on the CPU and one on the GPU, the second starting from the first's
    blob values; their tops, bottom diffs (where propagated) and blob diffs must agree.

    layer: the text of a LayerParameter (built in `dtype` and `phase`), a Layer (rebuilt from
    its param), or a function returning a fresh layer. bottoms: arrays (else Gaussian arrays
    of bottom_shapes). Layers without a backward (Accuracy, ArgMax) compare their tops only.
    rtol/atol default to 1e-9/1e-11 in float64 and 1e-4/1e-5 in float32; 0/0 asks for equality.
    """
    build = _factory(layer, dtype, phase)
    if bottoms is None:
        g = np.random.default_rng(seed)
        bottoms = [g.standard_normal(s) for s in bottom_shapes]
    backend.set_mode_cpu()
    cpu, params, dtype = _run(build, bottoms, propagate_down, num_top, None, seed)
    backend.set_mode_gpu()
    try:
        gpu, _, _ = _run(build, bottoms, propagate_down, num_top, params, seed)
    finally:
        backend.set_mode_cpu()
    double = dtype == np.float64
    rtol = (1e-9 if double else 1e-4) if rtol is None else rtol
    atol = (1e-11 if double else 1e-5) if atol is None else atol
    assert cpu.keys() == gpu.keys()
    for key in cpu:
        np.testing.assert_allclose(gpu[key], cpu[key], rtol=rtol, atol=atol,
                                   err_msg=f"{key} differs between the CPU and the GPU")
