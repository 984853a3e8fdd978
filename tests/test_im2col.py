import itertools

import numpy as np
import pytest

from dist_caffe.im2col import (ConvGeometry, as_tuple, col2im, conv_out_size, im2col, pad_spatial,
                               pool_divisor, pool_out_size, windows)

GEOMETRIES = [  # size, kernel, stride, pad, dilation
    ((7, 6), (3, 2), (2, 1), (1, 2), (1, 2)),
    ((12, 12), 5, 1, 0, 1),
    ((5, 8), 3, 2, 1, 1),
    ((9, 7), 3, 1, 2, 3),
    ((6,), 3, 2, 1, 1),
    ((4, 5, 6), 2, (1, 2, 1), 1, 1),
]


def reference_im2col(x, g, batch_inner):
    """Caffe's col buffer, image by image with explicit loops, stacked along the columns."""
    n, c = x.shape[:2]
    rows = []
    for ch in range(c):
        for off in itertools.product(*map(range, g.kernel)):
            row = np.zeros((n,) + g.out)
            for pos in itertools.product(*map(range, g.out)):
                src = [p * s - pd + o * d for p, s, pd, o, d in
                       zip(pos, g.stride, g.pad, off, g.dilation)]
                if all(0 <= v < size for v, size in zip(src, g.size)):
                    row[(slice(None),) + pos] = x[(slice(None), ch) + tuple(src)]
            rows.append(np.moveaxis(row, 0, -1).ravel() if batch_inner else row.ravel())
    return np.array(rows)


@pytest.mark.parametrize("batch_inner", [False, True])
@pytest.mark.parametrize("size, kernel, stride, pad, dilation", GEOMETRIES)
def test_im2col_matches_loops(size, kernel, stride, pad, dilation, batch_inner):
    g = ConvGeometry(size, kernel, stride, pad, dilation)
    x = np.random.default_rng(0).standard_normal((3, 2) + size)
    col = im2col(x, g, batch_inner)
    assert col.shape == g.col_shape(3, 2)
    np.testing.assert_array_equal(col, reference_im2col(x, g, batch_inner))


@pytest.mark.parametrize("batch_inner", [False, True])
@pytest.mark.parametrize("size, kernel, stride, pad, dilation", GEOMETRIES)
def test_col2im_is_the_adjoint_of_im2col(size, kernel, stride, pad, dilation, batch_inner):
    g = ConvGeometry(size, kernel, stride, pad, dilation)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2) + size)
    c = rng.standard_normal(g.col_shape(3, 2))
    back = col2im(c, g, 3, 2, batch_inner)
    assert back.shape == x.shape
    assert np.vdot(im2col(x, g, batch_inner), c) == pytest.approx(np.vdot(x, back), rel=1e-12)
    # the same sums written into a given array, overwriting it
    out = np.full_like(x, 7.0)
    col2im(c, g, 3, 2, batch_inner, out=out)
    np.testing.assert_allclose(out, back, rtol=1e-13, atol=1e-13)


def test_col2im_adds_overlapping_cells():
    g = ConvGeometry((3,), 2)  # windows [0, 1] and [1, 2]: cell 1 is read twice
    back = col2im(np.ones(g.col_shape(1, 1)), g, 1, 1)
    np.testing.assert_array_equal(back, [[[1.0, 2.0, 1.0]]])


def test_im2col_into_given_buffer_float32():
    g = ConvGeometry((6, 6), 3, 1, 1)
    x = np.arange(2 * 3 * 36, dtype=np.float32).reshape(2, 3, 6, 6)
    out = np.empty(g.col_shape(2, 3), np.float32)
    assert im2col(x, g, out=out) is not None and out.dtype == np.float32
    np.testing.assert_array_equal(out, reference_im2col(x, g, False))


@pytest.mark.parametrize("size, k, s, p, d, expected", [
    (28, 5, 1, 0, 1, 24), (32, 5, 1, 2, 1, 32), (227, 11, 4, 0, 1, 55), (13, 3, 1, 1, 1, 13),
    (8, 3, 1, 2, 2, 8), (7, 3, 2, 1, 1, 4), (6, 3, 2, 0, 1, 2)])
def test_conv_out_size(size, k, s, p, d, expected):
    assert conv_out_size(size, k, s, p, d) == expected


@pytest.mark.parametrize("size, k, s, p, expected", [
    (32, 3, 2, 0, 16), (16, 3, 2, 0, 8), (8, 3, 2, 0, 4),   # CIFAR-10 quick: 32 -> 16 -> 8 -> 4
    (55, 3, 2, 0, 27), (24, 2, 2, 0, 12),
    (7, 3, 2, 1, 4), (6, 3, 2, 0, 3), (6, 3, 2, 1, 4),
    (5, 2, 2, 1, 3),   # ceil gives 4, but the 4th window would start at 6 >= 5 + 1: dropped
    (8, 2, 2, 1, 5)])
def test_pool_out_size_rounds_up_like_caffe(size, k, s, p, expected):
    assert pool_out_size(size, k, s, p) == expected


def test_pool_out_size_floor_mode():
    assert pool_out_size(6, 3, 2, 0, ceil_mode=False) == 2
    assert pool_out_size(32, 3, 2, 0, ceil_mode=False) == 15


def test_pool_divisor_counts_padding_but_not_overhang():
    # size 6, k 3, s 2, pad 1: windows start at -1, 1, 3, 5; the last ends at 8 > 6 + 1
    np.testing.assert_array_equal(pool_divisor((6,), (3,), (2,), (1,), (4,)), [3, 3, 3, 2])
    div = pool_divisor((6, 5), (3, 3), (2, 2), (1, 0), (4, 2))
    np.testing.assert_array_equal(div, np.outer([3, 3, 3, 2], [3, 3]))


def test_windows_view_and_padding():
    x = np.arange(2 * 5 * 6, dtype=np.float64).reshape(1, 2, 5, 6)
    xp = pad_spatial(x, (1, 0), (2, 1), value=-1.0)
    assert xp.shape == (1, 2, 8, 7)
    assert (xp[:, :, 0] == -1).all() and (xp[:, :, 6:] == -1).all() and (xp[..., 6] == -1).all()
    np.testing.assert_array_equal(xp[:, :, 1:6, :6], x)
    v = windows(x, (2, 3), (2, 1), (1, 2), (2, 2))
    assert v.shape == (1, 2, 2, 3, 2, 2)
    for i, j, a, b in itertools.product(range(2), range(3), range(2), range(2)):
        assert v[0, 1, i, j, a, b] == x[0, 1, 2 * a + i, b + 2 * j]


def test_as_tuple():
    assert as_tuple(3, 2) == (3, 3)
    assert as_tuple([2], 3) == (2, 2, 2)
    assert as_tuple([1, 2], 2) == (1, 2)
    with pytest.raises(ValueError):
        as_tuple([1, 2, 3], 2)
