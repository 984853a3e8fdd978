"""CPU/GPU parity: one layer run on both devices with the same inputs must agree."""
import numpy as np

from .. import backend, rng
from ..blob import Blob


def _run(layer, bottoms, weights, params, seed):
    bottom = [Blob(a.shape, layer.dtype) for a in bottoms]
    for b, a in zip(bottom, bottoms):
        b.data = a
    top = [Blob((), layer.dtype) for _ in range(max(len(layer.param.top), layer.exact_num_top or 1))]
    rng.set_random_seed(seed)
    layer.setup(bottom, top)
    for blob, value in zip(layer.blobs, params or []):
        blob.data = value
    layer.run_forward(bottom, top)
    for t, w in zip(top, weights or [np.random.default_rng(seed).standard_normal(t.shape) for t in top]):
        t.diff = w
    for b in layer.blobs:
        b.diff[...] = 0
    layer.run_backward(top, [True] * len(bottom), bottom)
    out = [backend.to_cpu(t.data) for t in top] + [backend.to_cpu(b.diff) for b in bottom]
    return out + [backend.to_cpu(b.diff) for b in layer.blobs], [backend.to_cpu(b.data) for b in layer.blobs]


def assert_cpu_gpu_parity(make_layer, bottom_shapes=None, bottoms=None, atol=1e-5, rtol=1e-4,
                          seed=0):
    """make_layer() builds a fresh layer; tops, bottom diffs and param diffs must agree."""
    g = np.random.default_rng(seed)
    bottoms = bottoms or [g.standard_normal(s).astype(np.float32) for s in bottom_shapes]
    backend.set_mode_cpu()
    cpu, params = _run(make_layer(), bottoms, None, None, seed)
    backend.set_mode_gpu()
    try:
        gpu, _ = _run(make_layer(), bottoms, None, params, seed)
    finally:
        backend.set_mode_cpu()
    for i, (a, b) in enumerate(zip(cpu, gpu)):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=f"output #{i} differs")
