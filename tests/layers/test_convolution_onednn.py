"""oneDNN as the engine of float32 CPU convolutions (dist_caffe/onednn.py): the numbers of the
float64 numpy reference, Caffe's accumulation rules, and numpy wherever oneDNN is not used."""
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from dist_caffe import onednn
from dist_caffe.layers import convolution
from dist_caffe.testing import make_layer, setup_layer

from .conftest import onednn_refuses
from .test_convolution import conv_text

needs_onednn = pytest.mark.skipif(not onednn.available(),
                                  reason=f"oneDNN not loaded: {onednn.library()[1]}")

CONFIGS = [  # (extra convolution_param, bottom shape): 32+ channels per group
    ("kernel_size: 3", (2, 32, 6, 5)),
    ("kernel_size: 3 stride: 2 pad: 1 group: 2", (2, 64, 7, 6)),
    ("kernel_h: 3 kernel_w: 2 pad_h: 2 pad_w: 1 dilation: 2 bias_term: false", (2, 32, 8, 7)),
    ("kernel_size: 2 kernel_size: 3 stride_h: 1 stride_w: 2 pad: 1", (3, 32, 5, 7)),
    ("kernel_size: 1 group: 2", (2, 64, 4, 5)),
    ("kernel_size: 1 stride: 2", (2, 32, 6, 6)),   # the last input row/column is never read
    ("kernel_size: 3 stride: 3", (1, 32, 8, 8)),   # ... nor the last two
    ("kernel_size: 5 pad: 2", (3, 32, 8, 8)),      # CIFAR-10's 'same' 5x5
    ("kernel_size: 3 pad: 1", (2, 32, 7)),                                        # 1-D
    ("kernel_size: 2 kernel_size: 3 kernel_size: 2 stride: 2 pad: 1", (2, 32, 4, 5, 6)),  # 3-D
    ("kernel_size: 3 axis: 2", (2, 3, 32, 6, 5)),  # leading axes are the batch
]


def _run(text, xs, dys, dtype, layout, weights=None, propagate_down=None, prefill=0.5):
    """Forward + backward of a fresh layer on bottoms `xs`; param diffs start at `prefill`
    (they must accumulate) and bottom diffs at 7 (they must be overwritten or left alone)."""
    layer = make_layer(text, dtype=dtype)
    layer.cpu_layout = layout
    bottom, top = setup_layer(layer, [x.astype(dtype) for x in xs], num_top=len(xs))
    if weights is not None:
        for blob, w in zip(layer.blobs, weights):
            blob.data[...] = w
    for blob in layer.blobs:
        blob.diff[...] = prefill
    layer.forward(bottom, top)
    for t, dy in zip(top, dys):
        t.diff[...] = dy
    for b in bottom:
        b.diff[...] = 7.0
    layer.backward(top, propagate_down or [True] * len(xs), bottom)
    return layer, [t.data.copy() for t in top], [b.diff.copy() for b in bottom]


def _close(mine, want):
    """float32 against float64: relative to the largest entry of the reference."""
    np.testing.assert_allclose(mine, want, rtol=2e-4, atol=2e-5 * max(1.0, np.abs(want).max()))


def _inputs(text, shapes, seed):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(s) for s in shapes]
    probe = make_layer(text)
    _, top = setup_layer(probe, xs, num_top=len(xs))
    return xs, [rng.standard_normal(t.shape) for t in top]


@needs_onednn
@pytest.mark.parametrize("extra, shape", CONFIGS)
def test_onednn_matches_the_float64_numpy_reference(extra, shape):
    text = conv_text(6 if "group: 2" in extra else 5, extra)
    xs, dys = _inputs(text, [shape], 0)
    layer, y, dx = _run(text, xs, dys, np.float32, "onednn")
    assert layer._plan is not None, "oneDNN did not run this layer"
    weights = [b.data.astype(np.float64) for b in layer.blobs]
    want, want_y, want_dx = _run(text, xs, dys, np.float64, "cols", weights)
    assert want._plan is None
    _close(y[0], want_y[0])
    _close(dx[0], want_dx[0])
    for mine, theirs in zip(layer.blobs, want.blobs):
        _close(mine.diff, theirs.diff)   # both include the 0.5 they started from


@needs_onednn
def test_onednn_two_bottoms_share_weights_and_sum_their_gradients():
    text = conv_text(4, "kernel_size: 3 pad: 1")
    xs, dys = _inputs(text, [(2, 32, 5, 5)] * 2, 1)
    layer, ys, dxs = _run(text, xs, dys, np.float32, "onednn")
    assert layer._plan is not None
    weights = [b.data.astype(np.float64) for b in layer.blobs]
    want, want_ys, want_dxs = _run(text, xs, dys, np.float64, "cols", weights)
    for a, b in zip(ys + dxs, want_ys + want_dxs):
        _close(a, b)
    for mine, theirs in zip(layer.blobs, want.blobs):
        _close(mine.diff, theirs.diff)


@needs_onednn
def test_onednn_respects_propagate_down_and_frozen_params():
    text = conv_text(4, "kernel_size: 3 pad: 1")
    xs, dys = _inputs(text, [(2, 32, 5, 5)], 2)
    layer = make_layer(text, dtype=np.float32)
    bottom, top = setup_layer(layer, [xs[0].astype(np.float32)])
    layer.forward(bottom, top)
    top[0].diff[...] = dys[0]
    layer.param_propagate_down = [False, True]   # weights frozen (lr_mult: 0), bias learns
    bottom[0].diff[...] = 7.0
    layer.backward(top, [False], bottom)
    assert layer._plan is not None
    np.testing.assert_array_equal(bottom[0].diff, 7.0)
    np.testing.assert_array_equal(layer.blobs[0].diff, 0.0)
    _close(layer.blobs[1].diff, dys[0].sum(axis=(0, 2, 3)))
    layer.param_propagate_down = [False, False]
    layer.backward(top, [False], bottom)   # nothing to do
    _close(layer.blobs[1].diff, dys[0].sum(axis=(0, 2, 3)))


@needs_onednn
def test_onednn_plan_follows_a_new_batch_size():
    text = conv_text(4, "kernel_size: 3 pad: 1")
    layer = make_layer(text, dtype=np.float32)
    rng = np.random.default_rng(3)
    bottom, top = setup_layer(layer, [rng.standard_normal((2, 32, 5, 5)).astype(np.float32)])
    layer.forward(bottom, top)
    first = layer._plan
    bottom[0].reshape(3, 32, 5, 5)
    bottom[0].data[...] = rng.standard_normal((3, 32, 5, 5))
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    assert layer._plan is not first and top[0].shape == (3, 4, 5, 5)
    ref = make_layer(text)
    b64, t64 = setup_layer(ref, [bottom[0].data.astype(np.float64)])
    for mine, theirs in zip(layer.blobs, ref.blobs):
        theirs.data[...] = mine.data
    ref.forward(b64, t64)
    _close(top[0].data, t64[0].data)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("why, extra, shape, dtype", [
    ("float64", "kernel_size: 3", (1, 32, 5, 5), np.float64),
    ("few channels per group", "kernel_size: 3", (1, 31, 5, 5), np.float32),
    ("few channels per group", "kernel_size: 3 group: 2", (1, 32, 5, 5), np.float32),
    ("engine: CAFFE", "kernel_size: 3 engine: CAFFE", (1, 32, 5, 5), np.float32),
])
def test_numpy_runs_what_onednn_does_not(monkeypatch, threads, why, extra, shape, dtype):
    """...and oneDNN takes few-channel layers too when it runs on more than one thread
    (numpy's BLAS is then down to one)."""
    monkeypatch.setattr(onednn, "threads", lambda: threads)
    layer = make_layer(conv_text(4, extra), dtype=dtype)
    bottom, top = setup_layer(layer, [np.ones(shape, dtype)])
    layer.forward(bottom, top)
    by_onednn = why == "few channels per group" and threads > 1 and onednn.available()
    assert (layer._plan is not None) == by_onednn, why


@needs_onednn
def test_onednn_matches_numpy_on_few_channels_when_it_has_threads(monkeypatch):
    monkeypatch.setattr(onednn, "threads", lambda: 2)
    text = conv_text(6, "kernel_size: 3 stride: 2 pad: 1 group: 3")
    xs, dys = _inputs(text, [(2, 3, 9, 8)], 6)
    layer, y, dx = _run(text, xs, dys, np.float32, "onednn")
    assert layer._plan is not None
    want, want_y, want_dx = _run(text, xs, dys, np.float64, "cols",
                                 [b.data.astype(np.float64) for b in layer.blobs])
    _close(y[0], want_y[0])
    _close(dx[0], want_dx[0])
    for mine, theirs in zip(layer.blobs, want.blobs):
        _close(mine.diff, theirs.diff)


def test_without_the_library_convolutions_run_on_numpy(monkeypatch):
    monkeypatch.setattr(onednn, "library", lambda: (None, "not installed (test)"))
    text = conv_text(4, "kernel_size: 3 pad: 1")
    xs, dys = _inputs(text, [(2, 32, 5, 5)], 4)
    layer, y, dx = _run(text, xs, dys, np.float32, "onednn")
    assert layer._plan is None
    want, want_y, want_dx = _run(text, xs, dys, np.float64, "cols",
                                 [b.data.astype(np.float64) for b in layer.blobs])
    _close(y[0], want_y[0])
    _close(dx[0], want_dx[0])


@needs_onednn
def test_a_geometry_onednn_rejects_falls_back_to_numpy_and_says_so(monkeypatch, caplog):
    monkeypatch.setattr(onednn, "ConvPlan",
                        onednn_refuses("dnnl_convolution_forward_primitive_desc_create"))
    text = conv_text(4, "kernel_size: 3 pad: 1")
    xs, dys = _inputs(text, [(2, 32, 5, 5)], 5)
    with caplog.at_level(logging.INFO, logger="dist_caffe.layers.convolution"):
        layer, y, _ = _run(text, xs, dys, np.float32, "onednn")
    assert layer._plan is None
    assert "runs on numpy" in caplog.text and "unimplemented (3)" in caplog.text
    want, want_y, _ = _run(text, xs, dys, np.float64, "cols",
                           [b.data.astype(np.float64) for b in layer.blobs])
    _close(y[0], want_y[0])


def _threads_after_load(env):
    """(loaded, why not, BLAS threads, OpenMP threads) in a fresh process after loading."""
    code = ("import json; from dist_caffe import onednn; ok = onednn.available(); "
            "from threadpoolctl import threadpool_info as t; i = t(); "
            "n = lambda api: min([x['num_threads'] for x in i if x['user_api'] == api] or [0]); "
            "print(json.dumps([ok, onednn.library()[1], n('blas'), n('openmp')]))")
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_dist_caffe_onednn_0_turns_it_off():
    ok, why, _, _ = _threads_after_load({"DIST_CAFFE_ONEDNN": "0"})
    assert not ok and why == "DIST_CAFFE_ONEDNN=0"


@needs_onednn
def test_onednn_takes_the_blas_threads_unless_omp_num_threads_is_set():
    assert _threads_after_load({"OPENBLAS_NUM_THREADS": "2"})[2:] == [1, 2]
    assert _threads_after_load({"OPENBLAS_NUM_THREADS": "1"})[2:] == [1, 1]
    assert _threads_after_load({"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"})[2:] == [2, 1]


def test_rows_and_cols_layouts_never_use_onednn():
    for layout in ("rows", "cols"):
        layer = make_layer(conv_text(4, "kernel_size: 3 pad: 1"), dtype=np.float32)
        layer.cpu_layout = layout
        bottom, top = setup_layer(layer, [np.ones((1, 32, 5, 5), np.float32)])
        layer.forward(bottom, top)
        assert layer._plan is None
    assert convolution.ConvolutionLayer.cpu_layout == "onednn"


@needs_onednn
def test_a_plan_the_library_refuses_raises_naming_the_call_and_the_reason():
    with pytest.raises(onednn.OneDNNError, match=r"convolution_forward.*invalid arguments \(2\)"):
        onednn.ConvPlan((1, 32, 5, 5), (4, 16, 3, 3), (1, 4, 3, 3),   # 16 of 32 channels
                        1, (1, 1), (0, 0), (1, 1), True)


@needs_onednn
def test_plans_share_scratch_buffers_safely_across_layers_and_threads():
    """Layers interleaved as in a net (both forwards, then both backwards), and two threads
    at once: every plan's numbers stay its own."""
    import threading
    texts = [conv_text(4, "kernel_size: 3 pad: 1"), conv_text(6, "kernel_size: 5 pad: 2")]
    shapes = [(2, 32, 6, 6), (3, 40, 9, 9)]
    cases = [_inputs(t, [s], 7 + i) for i, (t, s) in enumerate(zip(texts, shapes))]

    def run_interleaved(results):
        layers = []
        for text, (xs, dys) in zip(texts, cases):
            layer = make_layer(text, dtype=np.float32)
            bottom, top = setup_layer(layer, [xs[0].astype(np.float32)])
            layer.forward(bottom, top)
            layers.append((layer, bottom, top))
        for (layer, bottom, top), (xs, dys) in reversed(list(zip(layers, cases))):
            top[0].diff[...] = dys[0]
            layer.backward(top, [True], bottom)
        results.append([(l, t[0].data.copy(), b[0].diff.copy()) for l, b, t in layers])

    results = []
    threads = [threading.Thread(target=run_interleaved, args=(results,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run_interleaved(results)
    assert len(results) == 3
    for run in results:
        for (layer, y, dx), text, (xs, dys) in zip(run, texts, cases):
            assert layer._plan is not None
            want, want_y, want_dx = _run(text, xs, dys, np.float64, "cols",
                                         [b.data.astype(np.float64) for b in layer.blobs],
                                         prefill=0.0)
            _close(y, want_y[0])
            _close(dx, want_dx[0])
            for mine, theirs in zip(layer.blobs, want.blobs):
                _close(mine.diff, theirs.diff)


def test_a_missing_or_broken_library_says_why(monkeypatch, tmp_path):
    monkeypatch.delenv("DIST_CAFFE_ONEDNN", raising=False)
    monkeypatch.setattr(onednn, "_candidates", lambda: iter([str(tmp_path / "libdnnl.so.3")]))
    lib, why = onednn.library.__wrapped__()   # the uncached lookup
    assert lib is None and "pip install onednn-cpu-gomp==2023.2.0" in why
    (tmp_path / "libdnnl.so.3").write_text("not a shared object")
    lib, why = onednn.library.__wrapped__()
    assert lib is None and str(tmp_path / "libdnnl.so.3") in why
