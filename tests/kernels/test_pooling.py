"""kernels/pooling.cu against numpy pooling written from Caffe's rules (NOTES.md): ceil-mode
output size with the last window dropped when it starts past H + pad, max over the window
clipped to the image (first maximum wins), average divided by the window clipped to
[-pad, H + pad), stochastic pick by running sum."""
import math

import numpy as np
import pytest

from .conftest import tol

F = "pooling.cu"


def pooled(size, k, pad, stride):
    out = int(math.ceil((size + 2 * pad - k) / stride)) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def windows(size, k, pad, stride):
    """Per output: (start, end) clipped to the image, and the divisor extent (AVE)."""
    out = []
    for p in range(pooled(size, k, pad, stride)):
        start = p * stride - pad
        end_pad = min(start + k, size + pad)
        out.append((max(start, 0), min(end_pad, size), end_pad - start))
    return out


def ref_forward(x, k, pad, stride, mode):
    num, c, h, w = x.shape
    wh, ww = windows(h, k[0], pad[0], stride[0]), windows(w, k[1], pad[1], stride[1])
    y = np.zeros((num, c, len(wh), len(ww)))
    mask = np.full(y.shape, -1, np.int64)
    for i, (h0, h1, eh) in enumerate(wh):
        for j, (w0, w1, ew) in enumerate(ww):
            region = x[:, :, h0:h1, w0:w1].reshape(num, c, -1).astype(np.float64)
            if mode == "max":
                if region.shape[2] == 0:
                    y[:, :, i, j] = -np.finfo(np.float32).max
                    continue
                a = region.argmax(axis=2)
                y[:, :, i, j] = region.max(axis=2)
                mask[:, :, i, j] = (h0 + a // (w1 - w0)) * w + w0 + a % (w1 - w0)
            else:
                y[:, :, i, j] = region.sum(axis=2) / (eh * ew)
    return y, mask


def ref_backward(dy, x_shape, k, pad, stride, mode, mask=None):
    num, c, h, w = x_shape
    wh, ww = windows(h, k[0], pad[0], stride[0]), windows(w, k[1], pad[1], stride[1])
    dx = np.zeros(x_shape)
    for i, (h0, h1, eh) in enumerate(wh):
        for j, (w0, w1, ew) in enumerate(ww):
            if mode == "max":
                flat = dx.reshape(num, c, h * w)
                for a in range(num):
                    for b in range(c):
                        if mask[a, b, i, j] >= 0:
                            flat[a, b, mask[a, b, i, j]] += dy[a, b, i, j]
            else:
                dx[:, :, h0:h1, w0:w1] += dy[:, :, i:i + 1, j:j + 1] / (eh * ew)
    return dx


# (num, C, H, W), kernel, pad, stride
CASES = [
    ((1, 1, 1, 1), (1, 1), (0, 0), (1, 1)),
    ((2, 3, 6, 6), (2, 2), (0, 0), (2, 2)),
    ((1, 2, 32, 32), (3, 3), (0, 0), (2, 2)),     # CIFAR-10 quick: 32 -> 16 (ceil)
    ((2, 2, 7, 9), (3, 3), (1, 1), (2, 2)),       # padded, odd sizes
    ((1, 3, 5, 8), (3, 2), (1, 0), (2, 3)),       # rectangular everything
    ((2, 1, 6, 6), (3, 3), (2, 2), (3, 3)),       # last window dropped (starts past H + pad)
    ((1, 2, 13, 13), (3, 3), (0, 0), (2, 2)),     # AlexNet pool1 geometry (ceil 13 -> 6)
    ((1, 2, 5, 5), (1, 1), (0, 0), (3, 3)),       # stride > kernel: ceil gives an empty window
    ((2, 3, 7, 7), (7, 7), (0, 0), (1, 1)),       # global pooling
    ((1, 1, 4, 4), (3, 3), (1, 1), (1, 1)),       # same-size output
]
IDS = [f"{c[0]}k{c[1]}p{c[2]}s{c[3]}" for c in CASES]


def geometry(case):
    shape, k, pad, stride = case
    return (shape[2], shape[3], pooled(shape[2], k[0], pad[0], stride[0]),
            pooled(shape[3], k[1], pad[1], stride[1]), *k, *stride, *pad)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max(dev, dtype, case):
    shape, k, pad, stride = case
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(dtype)
    y_ref, mask_ref = ref_forward(x, k, pad, stride, "max")
    g = geometry(case)
    n = y_ref.size
    y, mask = dev.run(F, "pooling_max_forward", n, x, *g, np.zeros(n, dtype), np.zeros(n, np.int32))[1:]
    np.testing.assert_array_equal(y.reshape(y_ref.shape), y_ref.astype(dtype))
    np.testing.assert_array_equal(mask.reshape(y_ref.shape), mask_ref)

    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    dx, = dev.run(F, "pooling_max_backward", x.size, dy, mask, *g, np.full(shape, np.nan, dtype))[2:]
    np.testing.assert_allclose(dx, ref_backward(dy, shape, k, pad, stride, "max", mask_ref), **tol(dtype))


def test_max_ties_pick_the_first(dev):
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = x[0, 0, 2, 2] = 1
    y, mask = dev.run(F, "pooling_max_forward", 4, x, 4, 4, 2, 2, 3, 3, 2, 2, 1, 1,
                      np.zeros(4, np.float32), np.zeros(4, np.int32))[1:]
    # windows (rows and cols) [0,2) and [1,4): the last one holds both maxima, at 5 and 10
    np.testing.assert_array_equal(mask, [5, 5, 5, 5])
    np.testing.assert_array_equal(y, [1, 1, 1, 1])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_ave(dev, dtype, case):
    shape, k, pad, stride = case
    rng = np.random.default_rng(sum(shape) + 1)
    x = rng.standard_normal(shape).astype(dtype)
    y_ref, _ = ref_forward(x, k, pad, stride, "ave")
    g = geometry(case)
    y, = dev.run(F, "pooling_ave_forward", y_ref.size, x, *g, np.zeros(y_ref.shape, dtype))[1:]
    if stride[0] > k[0]:  # the empty ceil-mode window: Caffe's divisor is then <= 0
        y_ref, y = y_ref[..., :-1, :-1], y[..., :-1, :-1]
    np.testing.assert_allclose(y, y_ref, **tol(dtype))
    if stride[0] > k[0]:
        return
    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    dx, = dev.run(F, "pooling_ave_backward", x.size, dy, *g, np.full(shape, np.nan, dtype))[1:]
    np.testing.assert_allclose(dx, ref_backward(dy, shape, k, pad, stride, "ave"), **tol(dtype))


def test_ave_divisor_counts_padding_inside_h_plus_pad(dev):
    # H = 3, k = 3, pad = 1, stride = 2: pooled 2; windows [-1,2) and [1,4): both count 3 rows
    # (the second hangs one row into the pad, which counts), so every divisor is 9.
    x = np.ones((1, 1, 3, 3), np.float64)
    y, = dev.run(F, "pooling_ave_forward", 4, x, 3, 3, 2, 2, 3, 3, 2, 2, 1, 1, np.zeros(4))[1:]
    np.testing.assert_allclose(y, [4 / 9, 4 / 9, 4 / 9, 4 / 9])
    # H = 4, k = 3, pad = 1, stride = 2: windows [-1,2) and [1,4) -> 2x2 outputs of 9-cell windows,
    # but with H = 4, k = 4, pad = 1, stride = 3: [-1,3) and [2,5) -> the second is cut at 5 = H + pad.
    y, = dev.run(F, "pooling_ave_forward", 4, np.ones((1, 1, 4, 4)), 4, 4, 2, 2, 4, 4, 3, 3, 1, 1,
                 np.zeros(4))[1:]
    np.testing.assert_allclose(y, [9 / 16, 6 / 12, 6 / 12, 4 / 9])


def sto_reference(x, rand, k, stride):
    """TRAIN pick by running sum in x's dtype (as the kernel adds), and TEST's weighted mean."""
    num, c, h, w = x.shape
    wh = [(p * stride[0], min(p * stride[0] + k[0], h)) for p in range(pooled(h, k[0], 0, stride[0]))]
    ww = [(p * stride[1], min(p * stride[1] + k[1], w)) for p in range(pooled(w, k[1], 0, stride[1]))]
    y = np.zeros((num, c, len(wh), len(ww)), x.dtype)
    idx = np.zeros(y.shape, np.int64)
    test = np.zeros(y.shape)
    for a in range(num):
        for b in range(c):
            for i, (h0, h1) in enumerate(wh):
                for j, (w0, w1) in enumerate(ww):
                    vals = x[a, b, h0:h1, w0:w1].reshape(-1)
                    cs = np.cumsum(vals, dtype=x.dtype)
                    thr = x.dtype.type(rand[a, b, i, j]) * cs[-1]
                    pick = int(np.argmax(cs >= thr))
                    y[a, b, i, j] = vals[pick]
                    idx[a, b, i, j] = (h0 + pick // (w1 - w0)) * w + w0 + pick % (w1 - w0)
                    v64 = vals.astype(np.float64)
                    test[a, b, i, j] = (v64 ** 2).sum() / v64.sum() if v64.sum() > 0 else 0
    return y, idx, test


@pytest.mark.parametrize("case", [c for c in CASES if c[2] == (0, 0) and c[3][0] <= c[1][0]],
                         ids=[i for c, i in zip(CASES, IDS) if c[2] == (0, 0) and c[3][0] <= c[1][0]])
def test_stochastic(dev, dtype, case):
    shape, k, _, stride = case
    rng = np.random.default_rng(sum(shape) + 2)
    x = rng.uniform(0, 1, shape).astype(dtype)
    x[rng.uniform(size=shape) < 0.3] = 0  # ReLU-like zeros
    g = geometry(case)[:8]
    rand = rng.uniform(0, 1, (shape[0], shape[1], g[2], g[3])).astype(dtype)
    y_ref, idx_ref, test_ref = sto_reference(x, rand, k, stride)
    n = y_ref.size
    y, idx = dev.run(F, "pooling_sto_forward_train", n, x, rand, *g, np.zeros(n, dtype),
                     np.zeros(n, np.int32))[2:]
    np.testing.assert_array_equal(idx.reshape(idx_ref.shape), idx_ref)
    np.testing.assert_array_equal(y.reshape(y_ref.shape), y_ref)

    t, = dev.run(F, "pooling_sto_forward_test", n, x, *g, np.zeros(n, dtype))[1:]
    np.testing.assert_allclose(t.reshape(test_ref.shape), test_ref, **tol(dtype, 5))

    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    dx, = dev.run(F, "pooling_sto_backward", x.size, dy, idx, *g, np.full(shape, np.nan, dtype))[2:]
    expected = np.zeros(shape)
    flat = expected.reshape(shape[0], shape[1], -1)
    for a, b, i, j in np.ndindex(*idx_ref.shape):
        flat[a, b, idx_ref[a, b, i, j]] += dy[a, b, i, j]
    np.testing.assert_allclose(dx, expected, **tol(dtype))
