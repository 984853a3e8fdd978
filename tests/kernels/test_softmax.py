"""kernels/softmax.cu against numpy softmax, its Jacobian-vector product, and the softmax
loss with ignore_label and the VALID count."""
import numpy as np
import pytest

from .conftest import numeric_grad, tol

F = "softmax.cu"
FLT_MIN = float(np.finfo(np.float32).tiny)


def softmax(x, axis=1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# (outer, channels, inner)
SHAPES = [(1, 1, 1), (1, 10, 1), (7, 3, 5), (2, 1000, 1), (3, 21, 13), (5, 2, 1)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward(dev, dtype, shape):
    outer, c, inner = shape
    x = (np.random.default_rng(c).standard_normal(shape) * 10).astype(dtype)
    x[0, 0, 0] = 80  # exp(80) overflows float32 unless the max is taken out first
    y, = dev.run(F, "softmax_forward", outer * inner, x, c, inner, np.zeros(shape, dtype))[1:]
    np.testing.assert_allclose(y, softmax(x.astype(np.float64)), **tol(dtype, 5))
    np.testing.assert_allclose(y.sum(axis=1), 1, **tol(dtype, 50))


def test_forward_in_place(dev):
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    d = dev.put(x)
    dev.lib.call(F, "softmax_forward", 15, d, 4, 5, d)
    np.testing.assert_allclose(dev.get(d), softmax(x.astype(np.float64)), **tol(np.float32))


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 5, 3), (3, 4, 1), (1, 7, 6)], ids=str)
def test_backward(dev, dtype, shape):
    outer, c, inner = shape
    rng = np.random.default_rng(c + inner)
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape)
    expected = numeric_grad(softmax, x, dy)
    y = softmax(x).astype(dtype)
    dx, = dev.run(F, "softmax_backward", outer * inner, y, dy.astype(dtype), c, inner,
                  np.full(shape, np.nan, dtype))[2:]
    t = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dx, expected, **t)


def loss_reference(x, label, ignore):
    """Per-position loss and count, Caffe's FLT_MIN clamp, from float64 softmax."""
    p = softmax(x)
    outer, c, inner = x.shape
    loss, count = np.zeros((outer, inner)), np.zeros((outer, inner))
    for o, i in np.ndindex(outer, inner):
        lab = int(label[o, i])
        if ignore is not None and lab == ignore:
            continue
        loss[o, i] = -np.log(max(p[o, lab, i], FLT_MIN))
        count[o, i] = 1
    return loss, count


@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 10, 1), (3, 5, 7), (2, 1000, 1)], ids=str)
@pytest.mark.parametrize("ignore", [None, 0, 3, -1])
def test_loss(dev, dtype, shape, ignore):
    outer, c, inner = shape
    rng = np.random.default_rng(c * inner)
    x = rng.standard_normal(shape) * 3
    x[0, 0, 0] = -200  # p underflows: the loss clamps at -log(FLT_MIN)
    label = rng.integers(0, c, (outer, inner)).astype(np.float64)
    label[0, 0] = 0
    if ignore is not None:
        label[rng.uniform(size=label.shape) < 0.3] = ignore
    loss_ref, count_ref = loss_reference(x, label, ignore)
    prob = softmax(x).astype(dtype)
    n = outer * inner
    has, ig = (0, 0) if ignore is None else (1, ignore)
    loss, counts, bad = dev.run(F, "softmax_loss_forward", n, prob, label.astype(dtype), c, inner, has,
                                ig, np.full(n, np.nan, dtype), np.full(n, np.nan, dtype),
                                np.zeros(1, np.int32))[2:]
    np.testing.assert_allclose(loss.reshape(loss_ref.shape), loss_ref, **tol(dtype, 10))
    np.testing.assert_array_equal(counts.reshape(count_ref.shape), count_ref)
    assert bad[0] == 0

    # backward with the VALID normaliser and a loss weight of 2.5
    scale = np.array([2.5 / max(count_ref.sum(), 1)], dtype)
    dx, = dev.run(F, "softmax_loss_backward", n, prob, label.astype(dtype), c, inner, has, ig, scale,
                  np.full(shape, np.nan, dtype))[3:]
    onehot = np.zeros(shape)
    for o, i in np.ndindex(outer, inner):
        onehot[o, int(label[o, i]) if count_ref[o, i] else 0, i] = 1
    expected = (softmax(x) - onehot) * scale[0] * count_ref[:, None, :]
    np.testing.assert_allclose(dx, expected, **tol(dtype, 10))


def test_loss_gradient_is_the_derivative_of_the_mean_loss(dev):
    """d/dx of sum(loss)/valid through softmax = the backward kernel (differences, float64)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 2))
    label = np.array([[1, 2], [3, 3], [0, 1]], np.float64)
    label[1, 0] = 3  # ignore this one
    valid = (label != 3).sum()

    def mean_loss(v):
        loss, _ = loss_reference(v, label, 3)
        return loss.sum() / valid
    expected = numeric_grad(mean_loss, x, 1.0)
    dx, = dev.run(F, "softmax_loss_backward", 6, softmax(x), label, 4, 2, 1, 3,
                  np.array([1.0 / valid]), np.zeros(x.shape))[3:]
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-9)


def test_out_of_range_label_is_flagged_not_read(dev):
    prob = softmax(np.random.default_rng(0).standard_normal((2, 3, 1))).astype(np.float32)
    label = np.array([[1], [7]], np.float32)
    loss, counts, bad = dev.run(F, "softmax_loss_forward", 2, prob, label, 3, 1, 0, 0,
                                np.zeros(2, np.float32), np.zeros(2, np.float32), np.zeros(1, np.int32))[2:]
    assert bad[0] == 2  # position 1, plus one
    np.testing.assert_array_equal(counts, [1, 0])
    assert loss[1] == 0 and loss[0] > 0
    dx, = dev.run(F, "softmax_loss_backward", 2, prob, label, 3, 1, 0, 0, np.ones(1, np.float32),
                  np.full((2, 3, 1), np.nan, np.float32))[3:]
    np.testing.assert_array_equal(dx[1], 0)
