"""oneDNN as the engine of float32 CPU pooling (dist_caffe/onednn.py): Caffe's numbers,
including its ceil-mode edges, AVE divisors and first-maximum routing on ties, and numpy
wherever oneDNN would compute something else."""
import logging

import numpy as np
import pytest

from dist_caffe import onednn
from dist_caffe.testing import make_layer, setup_layer

from .conftest import onednn_refuses

needs_onednn = pytest.mark.skipif(not onednn.available(),
                                  reason=f"oneDNN not loaded: {onednn.library()[1]}")


def pool_text(extra):
    return f"type: 'Pooling' pooling_param {{ {extra} }}"


def _run(text, x, dy, engine, num_top=1):
    layer = make_layer(text, dtype=x.dtype)
    layer.cpu_engine = engine
    bottom, top = setup_layer(layer, [x], num_top=num_top)
    layer.forward(bottom, top)
    top[0].diff[...] = dy
    bottom[0].diff[...] = 7.0   # must be overwritten
    layer.backward(top, [True], bottom)
    return layer, top[0].data.copy(), bottom[0].diff.copy()


ENGINE_CASES = [  # pooling_param, bottom shape
    ("pool: MAX kernel_size: 3 stride: 2", (2, 16, 9, 9)),           # windows fit
    ("pool: MAX kernel_size: 3 stride: 2", (2, 5, 9, 9)),            # channels pad a block of 8
    ("pool: AVE kernel_size: 3 stride: 2", (2, 5, 8, 8)),
    ("pool: MAX kernel_size: 3 stride: 2", (2, 16, 8, 8)),           # ceil: one past the edge
    ("pool: MAX kernel_size: 3 stride: 2 pad: 1", (2, 16, 8, 8)),
    ("pool: MAX kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 2 pad_h: 1", (2, 8, 7, 9)),
    ("pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR", (2, 8, 8, 8)),
    ("pool: MAX global_pooling: true", (2, 8, 5, 6)),
    ("pool: AVE kernel_size: 3 stride: 2", (2, 16, 8, 8)),           # pad 0: overhang not counted
    ("pool: AVE kernel_size: 3 stride: 1 pad: 2", (2, 8, 5, 6)),     # padding counted
    ("pool: AVE kernel_size: 2 stride: 3 pad: 1", (2, 8, 7, 8)),
    ("pool: AVE global_pooling: true", (2, 8, 7, 7)),
]


@needs_onednn
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("extra, shape", ENGINE_CASES)
def test_onednn_pooling_matches_numpy(extra, shape, ties):
    """ties: post-ReLU-like inputs (many equal cells, zeros): the gradient must go to the
    same cell as Caffe's (the first maximum), not just to an equal one."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    if ties:
        x = np.maximum(np.round(x), 0).astype(np.float32)
    probe = make_layer(pool_text(extra), dtype=np.float32)
    _, top = setup_layer(probe, [x])
    dy = rng.standard_normal(top[0].shape).astype(np.float32)
    layer, y, dx = _run(pool_text(extra), x, dy, "onednn")
    assert layer._plan is not None, "oneDNN did not run this layer"
    want_layer, want_y, want_dx = _run(pool_text(extra), x, dy, "numpy")
    assert want_layer._plan is None
    np.testing.assert_allclose(y, want_y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("why, extra, shape, dtype, num_top", [
    ("float64", "pool: MAX kernel_size: 2 stride: 2", (1, 2, 4, 4), np.float64, 1),
    ("argmax top", "pool: MAX kernel_size: 2 stride: 2", (1, 2, 4, 4), np.float32, 2),
    # the last window reaches past H + pad: Caffe's divisor is neither of oneDNN's
    ("divisor", "pool: AVE kernel_size: 3 stride: 2 pad: 1", (1, 2, 8, 8), np.float32, 1),
    ("stochastic", "pool: STOCHASTIC kernel_size: 2 stride: 2", (1, 2, 4, 4), np.float32, 1),
    ("engine: CAFFE", "pool: MAX kernel_size: 2 stride: 2 engine: CAFFE", (1, 2, 4, 4),
     np.float32, 1),
])
def test_numpy_pools_what_onednn_would_compute_differently(why, extra, shape, dtype, num_top):
    x = np.abs(np.random.default_rng(1).standard_normal(shape)).astype(dtype)
    layer = make_layer(pool_text(extra), dtype=dtype)
    bottom, top = setup_layer(layer, [x], num_top=num_top)
    layer.forward(bottom, top)
    assert layer._plan is None, why


@needs_onednn
def test_a_pooling_onednn_rejects_falls_back_to_numpy_and_says_so(monkeypatch, caplog):
    monkeypatch.setattr(onednn, "PoolPlan",
                        onednn_refuses("dnnl_pooling_forward_primitive_desc_create"))
    x = np.random.default_rng(2).standard_normal((2, 4, 6, 6)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="dist_caffe.layers.pooling"):
        layer, y, _ = _run(pool_text("pool: MAX kernel_size: 2 stride: 2"), x,
                           np.ones((2, 4, 3, 3), np.float32), "onednn")
    assert layer._plan is None and "runs on numpy" in caplog.text
    np.testing.assert_array_equal(y, x.reshape(2, 4, 3, 2, 3, 2).max(axis=(3, 5)))


@needs_onednn
def test_onednn_pooling_follows_a_new_batch_size():
    layer = make_layer(pool_text("pool: MAX kernel_size: 2 stride: 2"), dtype=np.float32)
    rng = np.random.default_rng(3)
    bottom, top = setup_layer(layer, [rng.standard_normal((2, 3, 4, 4)).astype(np.float32)])
    layer.forward(bottom, top)
    bottom[0].reshape(3, 3, 4, 4)
    x = rng.standard_normal((3, 3, 4, 4)).astype(np.float32)
    bottom[0].data[...] = x
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    assert layer._plan is not None and top[0].shape == (3, 3, 2, 2)
    np.testing.assert_array_equal(top[0].data, x.reshape(3, 3, 2, 2, 2, 2).max(axis=(3, 5)))
