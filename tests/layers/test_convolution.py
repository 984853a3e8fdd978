import itertools

import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.layers import convolution
from dist_caffe.testing import assert_cpu_gpu_parity, check_gradient, make_layer, setup_layer

from .conftest import assert_caffe_close, caffe_layer, check_against_caffe


def conv_text(num_output, extra="", filler="gaussian"):
    return (f"type: 'Convolution' convolution_param {{ num_output: {num_output} {extra} "
            f"weight_filler {{ type: '{filler}' }} bias_filler {{ type: 'gaussian' }} }}")


def reference_conv(x, w, b, stride, pad, dilation, group):
    """Direct N-D cross-correlation, one output position at a time."""
    n, c = x.shape[:2]
    nd, o = x.ndim - 2, w.shape[0]
    kernel = w.shape[2:]
    xp = np.zeros((n, c) + tuple(s + 2 * p for s, p in zip(x.shape[2:], pad)))
    xp[(slice(None), slice(None)) + tuple(slice(p, p + s) for s, p in zip(x.shape[2:], pad))] = x
    out = tuple((s + 2 * p - d * (k - 1) - 1) // st + 1 for s, p, d, k, st in
                zip(x.shape[2:], pad, dilation, kernel, stride))
    y = np.zeros((n, o) + out)
    cg, og = c // group, o // group
    axes = list(range(1, nd + 2))
    for g in range(group):
        for pos in itertools.product(*map(range, out)):
            sl = tuple(slice(q * st, q * st + d * (k - 1) + 1, d)
                       for q, st, d, k in zip(pos, stride, dilation, kernel))
            patch = xp[(slice(None), slice(g * cg, (g + 1) * cg)) + sl]
            y[(slice(None), slice(g * og, (g + 1) * og)) + pos] = np.tensordot(
                patch, w[g * og:(g + 1) * og], axes=(axes, axes))
    if b is not None:
        y += b.reshape((1, o) + (1,) * nd)
    return y


CONFIGS = [  # (extra convolution_param, bottom shape, stride, pad, dilation, group, bias)
    ("kernel_size: 3", (2, 3, 6, 5), (1, 1), (0, 0), (1, 1), 1, True),
    ("kernel_size: 3 stride: 2 pad: 1 group: 2", (2, 4, 7, 6), (2, 2), (1, 1), (1, 1), 2, True),
    ("kernel_h: 3 kernel_w: 2 pad_h: 2 pad_w: 1 dilation: 2 bias_term: false",
     (2, 3, 8, 7), (1, 1), (2, 1), (2, 2), 1, False),
    ("kernel_size: 2 kernel_size: 3 stride_h: 1 stride_w: 2 pad: 1", (3, 2, 5, 7),
     (1, 2), (1, 1), (1, 1), 1, True),
    ("kernel_size: 1 group: 3", (2, 6, 4, 5), (1, 1), (0, 0), (1, 1), 3, True),
    ("kernel_size: 1 stride: 2", (2, 3, 5, 5), (2, 2), (0, 0), (1, 1), 1, True),
    ("kernel_size: 5", (1, 2, 20, 21), (1, 1), (0, 0), (1, 1), 1, True),   # single image, wide
    ("kernel_size: 3 pad: 1", (3, 2, 18, 18), (1, 1), (1, 1), (1, 1), 1, True),  # wide output
]


def _forward(text, x, dtype=np.float64):
    layer = make_layer(text, dtype=dtype)
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    return layer, bottom, top


@pytest.mark.parametrize("extra, shape, stride, pad, dilation, group, bias", CONFIGS)
def test_convolution_forward_matches_reference(extra, shape, stride, pad, dilation, group, bias):
    x = np.random.default_rng(0).standard_normal(shape)
    layer, _, top = _forward(conv_text(6, extra), x)
    assert layer.blobs[0].shape == (6, shape[1] // group) + layer.kernel
    assert len(layer.blobs) == (2 if bias else 1)
    b = layer.blobs[1].data if bias else None
    ref = reference_conv(x, layer.blobs[0].data, b, stride, pad, dilation, group)
    assert top[0].shape == ref.shape
    np.testing.assert_allclose(top[0].data, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("extra, shape", [
    ("kernel_size: 3 pad: 1", (2, 3, 7)),                                    # 1-D
    ("kernel_size: 2 kernel_size: 3 kernel_size: 2 stride: 2 pad: 1", (2, 2, 4, 5, 6)),  # 3-D
])
def test_convolution_nd_forward_matches_reference(extra, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    layer, _, top = _forward(conv_text(4, extra), x)
    g = layer.geometry
    w, b = layer.blobs[0].data, layer.blobs[1].data
    ref = reference_conv(x, w, b, g.stride, g.pad, g.dilation, 1)
    np.testing.assert_allclose(top[0].data, ref, rtol=1e-12, atol=1e-12)


def test_convolution_axis_2_treats_leading_axes_as_batch():
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 6, 5))
    layer, _, top = _forward(conv_text(5, "kernel_size: 3 axis: 2"), x)
    assert top[0].shape == (2, 3, 5, 4, 3)
    ref = reference_conv(x.reshape(6, 4, 6, 5), layer.blobs[0].data, layer.blobs[1].data,
                         (1, 1), (0, 0), (1, 1), 1)
    np.testing.assert_allclose(top[0].data, ref.reshape(top[0].shape), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("extra, shape", [
    ("kernel_size: 3", (2, 3, 5, 4)),
    ("kernel_size: 3 stride: 2 pad: 1 group: 2", (2, 4, 5, 6)),
    ("kernel_h: 3 kernel_w: 2 pad_h: 2 pad_w: 1 dilation: 2 bias_term: false", (2, 2, 5, 5)),
    ("kernel_size: 2 kernel_size: 3 stride: 2 stride: 1 pad: 1 pad: 0", (1, 3, 5, 6)),
    ("kernel_size: 1 group: 2", (2, 4, 3, 3)),
    ("kernel_size: 3 pad: 1", (1, 2, 17, 17)),   # wider than BATCH_INNER_MAX_WIDTH
    ("kernel_size: 2 pad: 2", (2, 2, 4, 4)),      # pad > k - 1: im2col even if "rows"
    ("kernel_size: 3 pad: 1", (2, 3, 7)),                                        # 1-D
    ("kernel_size: 2 kernel_size: 3 kernel_size: 2 pad: 1", (1, 2, 3, 4, 3)),    # 3-D
    ("kernel_size: 2 stride: 2 pad: 1 group: 2", (1, 2, 3, 4, 3)),               # 3-D strided
])
@pytest.mark.parametrize("layout", ["rows", "cols"])
def test_convolution_gradient(monkeypatch, extra, shape, layout):
    monkeypatch.setattr(convolution, "ROWS_MIN_CHANNELS", 1)   # rows even for 2 channels
    layer = make_layer(conv_text(4, extra))
    layer.cpu_layout = layout
    check_gradient(layer, bottom_shapes=[shape])
    assert layer._use_rows(np) == (layout == "rows" and layer.backward_by_correlation
                                   and not layer.is_1x1)


LAYOUTS = [("cols", False), ("cols", True), ("rows", None)]   # (cpu_layout, batch_inner)


def _run_layout(text, x, dy, layout, batch_inner, chunked, monkeypatch):
    """Forward + backward of a fresh layer (same weights: same seed) in one layout."""
    if chunked:   # one image per chunk
        monkeypatch.setattr(convolution, "COL_BUFFER_BYTES", 1)
        monkeypatch.setattr(convolution, "ROW_CHUNK_BYTES", 1)
    monkeypatch.setattr(convolution, "ROWS_MIN_CHANNELS", 1)
    layer = make_layer(text)
    layer.cpu_layout = layout
    bottom, top = setup_layer(layer, [x])
    assert layer._use_rows(np) == (layout == "rows" and layer.backward_by_correlation)
    if batch_inner is not None:
        layer.batch_inner = batch_inner
    layer.forward(bottom, top)
    top[0].diff[...] = dy
    layer.backward(top, [True], bottom)
    chunks = layer.row_chunks if layout == "rows" else layer.chunks
    assert len(chunks) == (len(x) if chunked else 1)
    monkeypatch.undo()
    return layer, top[0].data.copy(), bottom[0].diff.copy()


@pytest.mark.parametrize("extra, correlation", [
    ("kernel_size: 3 stride: 2 pad: 1 group: 2", False),   # strided: im2col even if "rows"
    ("kernel_size: 3 pad: 2 dilation: 2 group: 2", True),  # dx as a convolution of dy
    ("kernel_size: 3 pad: 1", True),
    ("kernel_size: 1 pad: 1", False),                      # pad > d (k - 1): im2col
])
@pytest.mark.parametrize("layout, batch_inner", LAYOUTS)
@pytest.mark.parametrize("chunked", [False, True])
def test_convolution_layouts_and_chunks_agree(monkeypatch, extra, correlation, layout,
                                              batch_inner, chunked):
    """Both im2col column orders, im2row, and batches split into chunks give the same numbers
    as the direct reference (forward) and as whole-batch im2col (backward)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4, 7, 6))
    text = conv_text(6, extra)
    base = make_layer(text)
    _, top = setup_layer(base, [x])
    dy = rng.standard_normal(top[0].shape)
    assert base.backward_by_correlation == correlation
    want_layer, _, want_dx = _run_layout(text, x, dy, "cols", False, False, monkeypatch)
    layer, y, dx = _run_layout(text, x, dy, layout, batch_inner, chunked, monkeypatch)
    g = layer.geometry
    ref = reference_conv(x, layer.blobs[0].data, layer.blobs[1].data, g.stride, g.pad,
                         g.dilation, layer.group)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    for mine, theirs in zip(layer.blobs, want_layer.blobs):
        np.testing.assert_allclose(mine.diff, theirs.diff, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channels, outputs, group, extra, rows", [
    (16, 4, 1, "pad: 1", True), (3, 4, 1, "pad: 1", False), (32, 4, 4, "pad: 1", False),
    (64, 4, 4, "pad: 1", True), (16, 4, 1, "pad: 0", False), (16, 4, 1, "pad: 1 stride: 2", False),
    (16, 227, 1, "pad: 1", True), (16, 228, 1, "pad: 1", False)])   # 227 x 9 <= 2048 < 228 x 9
def test_convolution_picks_im2row_for_same_convolutions_it_is_faster_for(channels, outputs,
                                                                         group, extra, rows):
    """Stride-1 'same' convolutions, 16+ channels per group in, dy patches at most
    ROWS_MAX_DY_COLUMNS wide; the output matches the direct reference either way."""
    x = np.random.default_rng(4).standard_normal((2, channels, 6, 6))
    layer, _, top = _forward(conv_text(outputs, f"kernel_size: 3 group: {group} {extra}"), x)
    assert layer._use_rows(np) == rows
    g = layer.geometry
    ref = reference_conv(x, layer.blobs[0].data, layer.blobs[1].data, g.stride, g.pad, (1, 1),
                         group)
    np.testing.assert_allclose(top[0].data, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", ["rows", "cols"])
def test_convolution_two_bottoms_share_weights_and_sum_their_gradients(monkeypatch, layout):
    monkeypatch.setattr(convolution, "ROWS_MIN_CHANNELS", 1)
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((2, 3, 5, 5))
    layer = make_layer(conv_text(4, "kernel_size: 3 pad: 1"))
    layer.cpu_layout = layout
    bottom, top = setup_layer(layer, [x1, x2], num_top=2)
    assert layer._use_rows(np) == (layout == "rows")
    layer.forward(bottom, top)
    w, b = layer.blobs[0].data, layer.blobs[1].data
    for x, t in ((x1, top[0]), (x2, top[1])):
        np.testing.assert_allclose(t.data, reference_conv(x, w, b, (1, 1), (1, 1), (1, 1), 1),
                                   rtol=1e-12, atol=1e-12)
    dy1, dy2 = rng.standard_normal(top[0].shape), rng.standard_normal(top[1].shape)
    top[0].diff[...], top[1].diff[...] = dy1, dy2
    layer.backward(top, [True, True], bottom)
    np.testing.assert_allclose(layer.blobs[1].diff, (dy1 + dy2).sum(axis=(0, 2, 3)), rtol=1e-12)
    # each bottom's own gradient, and the weight gradient summed, as two single-bottom layers
    weight_diffs = []
    for x, dy, bot in ((x1, dy1, bottom[0]), (x2, dy2, bottom[1])):
        single = make_layer(conv_text(4, "kernel_size: 3 pad: 1"))
        single.cpu_layout = "cols"
        b1, t1 = setup_layer(single, [x])
        single.blobs[0].data[...], single.blobs[1].data[...] = w, b
        single.forward(b1, t1)
        t1[0].diff[...] = dy
        single.backward(t1, [True], b1)
        np.testing.assert_allclose(bot.diff, b1[0].diff, rtol=1e-12, atol=1e-12)
        weight_diffs.append(single.blobs[0].diff.copy())
    np.testing.assert_allclose(layer.blobs[0].diff, sum(weight_diffs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch_inner", [False, True])   # False: per-image GEMMs on the CPU
@pytest.mark.parametrize("extra", ["kernel_size: 3 pad: 1", "kernel_size: 3 group: 2 stride: 2"])
def test_convolution_backward_accumulates_param_diffs_and_respects_propagate_down(batch_inner,
                                                                                   extra):
    rng = np.random.default_rng(5)
    layer = make_layer(conv_text(4, extra))
    bottom, top = setup_layer(layer, [rng.standard_normal((2, 2, 5, 5))])
    layer.batch_inner = batch_inner
    layer.forward(bottom, top)
    top[0].diff[...] = rng.standard_normal(top[0].shape)
    layer.backward(top, [True], bottom)
    once = [b.diff.copy() for b in layer.blobs]
    bottom[0].diff[...] = 42.0
    layer.backward(top, [False], bottom)
    np.testing.assert_array_equal(bottom[0].diff, 42.0)
    for b, d in zip(layer.blobs, once):
        np.testing.assert_allclose(b.diff, 2 * d, rtol=1e-12)


def test_convolution_float32_matches_float64():
    x = np.random.default_rng(6).standard_normal((4, 3, 9, 9))
    text = conv_text(5, "kernel_size: 3 stride: 2 pad: 1")
    l64, _, t64 = _forward(text, x)
    l32, _, t32 = _forward(text, x.astype(np.float32), np.float32)
    assert t32[0].data.dtype == np.float32
    np.testing.assert_allclose(t32[0].data, t64[0].data, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("extra, shape, field", [
    ("kernel_size: 3 group: 2", (1, 3, 5, 5), "group"),
    ("", (1, 3, 5, 5), "kernel_size"),
    ("kernel_h: 3", (1, 3, 5, 5), "kernel_h"),
    ("kernel_size: 3 kernel_h: 3 kernel_w: 3", (1, 3, 5, 5), "kernel_size"),
    ("kernel_size: 3 kernel_size: 3 kernel_size: 3", (1, 3, 5, 5), "kernel_size"),
    ("kernel_size: 7", (1, 3, 5, 5), "kernel_size"),
    ("kernel_size: 3 stride: 0", (1, 3, 5, 5), "stride"),
    ("kernel_h: 3 kernel_w: 3", (1, 3, 5, 5, 5), "kernel_h"),
    ("kernel_size: 3 axis: 3", (1, 3, 5, 5), "axis"),
    ("kernel_size: 3 axis: 7", (1, 3, 5, 5), "axis"),
])
def test_convolution_bad_config_names_field(extra, shape, field):
    layer = make_layer(conv_text(4, extra))
    with pytest.raises(ConfigError, match=field) as info:
        setup_layer(layer, [np.zeros(shape)])
    assert "layer 'layer'" in str(info.value) and "Convolution" in str(info.value)


def test_convolution_zero_num_output_is_a_config_error():
    with pytest.raises(ConfigError, match="num_output"):
        setup_layer(make_layer("type: 'Convolution' convolution_param { kernel_size: 3 }"),
                    [np.zeros((1, 1, 4, 4))])


def test_convolution_channels_may_not_change_after_setup():
    layer = make_layer(conv_text(2, "kernel_size: 3"))
    bottom, top = setup_layer(layer, [np.zeros((1, 3, 5, 5))])
    bottom[0].reshape(1, 4, 5, 5)
    with pytest.raises(ConfigError, match="bottom"):
        layer.reshape(bottom, top)


@pytest.mark.parametrize("name", ["conv0", "conv_grp", "conv_dil"])
def test_convolution_matches_bvlc_caffe(conformance, name):
    layer, ref = caffe_layer(conformance, "layer_zoo_a", name)
    bottom = check_against_caffe(layer, ref, name)
    if layer.param.bottom[0] == "data":   # read by this layer alone: its diff is this layer's
        assert_caffe_close(bottom[0].diff, ref["diff/data"])


def test_convolution_refuses_to_run_in_place():
    blob = Blob((2, 3, 4, 4), np.float64)
    with pytest.raises(ConfigError, match="in place"):
        make_layer(conv_text(3, "kernel_size: 1")).setup([blob], [blob])


@pytest.mark.gpu
@pytest.mark.skipif(not backend.has_gpu(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("extra, shape", [
    ("kernel_size: 3 stride: 2 pad: 1 group: 2", (2, 4, 9, 8)),
    ("kernel_size: 3 pad: 1", (2, 3, 20, 20)),
    ("kernel_size: 1", (2, 3, 4, 4))])
def test_convolution_cpu_gpu_parity(extra, shape):
    x = np.random.default_rng(8).standard_normal(shape)
    assert_cpu_gpu_parity(conv_text(6, extra), bottoms=[x], rtol=1e-10, atol=1e-12)
