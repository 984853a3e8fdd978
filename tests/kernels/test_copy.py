"""kernels/copy.cu against np.concatenate / slicing / np.tile."""
import numpy as np
import pytest

F = "copy.cu"


def concat_args(shapes, axis, i):
    before = int(np.prod(shapes[0][:axis]))
    after = int(np.prod(shapes[0][axis + 1:]))
    total = sum(s[axis] for s in shapes)
    offset = sum(s[axis] for s in shapes[:i])
    return before, after, total, shapes[i][axis], offset


@pytest.mark.parametrize("shapes,axis", [
    ([(2, 3, 4), (2, 5, 4)], 1),
    ([(1, 1), (1, 1), (1, 1)], 0),
    ([(3, 2, 5), (3, 2, 1), (3, 2, 7)], 2),
    ([(2, 4), (5, 4)], 0),
    ([(2, 3, 4, 5), (2, 1, 4, 5)], 1),
])
def test_concat_and_slice(dev, dtype, shapes, axis):
    rng = np.random.default_rng(len(shapes) + axis)
    xs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    whole = np.concatenate(xs, axis=axis)
    top = dev.put(np.full(whole.shape, np.nan, dtype))
    for i, x in enumerate(xs):
        before, after, total, mine, offset = concat_args(shapes, axis, i)
        dev.lib.call(F, "copy_concat", x.size, dev.put(x), 1, before, after, total, mine, offset, top)
    np.testing.assert_array_equal(dev.get(top), whole)
    for i, x in enumerate(xs):  # concat backward and slice forward both cut the pieces out
        before, after, total, mine, offset = concat_args(shapes, axis, i)
        back, = dev.run(F, "copy_concat", x.size, whole, 0, before, after, total, mine, offset,
                        np.full(x.shape, np.nan, dtype))[1:]
        np.testing.assert_array_equal(back, x)
        piece, = dev.run(F, "copy_slice", x.size, whole, 1, before, after, total, mine, offset,
                         np.full(x.shape, np.nan, dtype))[1:]
        np.testing.assert_array_equal(piece, x)
    bottom_diff = dev.put(np.full(whole.shape, np.nan, dtype))  # slice backward reassembles
    for i, x in enumerate(xs):
        before, after, total, mine, offset = concat_args(shapes, axis, i)
        dev.lib.call(F, "copy_slice", x.size, dev.put(x), 0, before, after, total, mine, offset, bottom_diff)
    np.testing.assert_array_equal(dev.get(bottom_diff), whole)


@pytest.mark.parametrize("bottom,top,offsets", [
    ((2, 3, 8, 9), (2, 3, 5, 4), (0, 0, 2, 3)),
    ((1, 1, 1, 1), (1, 1, 1, 1), (0, 0, 0, 0)),
    ((4, 5, 6), (2, 5, 3), (1, 0, 3)),
    ((7,), (3,), (4,)),
    ((3, 4, 5, 6, 7), (3, 2, 5, 1, 2), (0, 1, 0, 5, 4)),
])
def test_crop(dev, dtype, bottom, top, offsets):
    x = np.random.default_rng(len(bottom)).standard_normal(bottom).astype(dtype)
    cut = tuple(slice(o, o + t) for o, t in zip(offsets, top))
    strides = [int(np.prod(bottom[d + 1:])) for d in range(len(bottom))]
    dims = np.array(list(top) + strides + list(offsets), np.int32)
    n = int(np.prod(top))
    y, = dev.run(F, "copy_crop", n, x, 1, len(bottom), dims, np.full(top, np.nan, dtype))[2:]
    np.testing.assert_array_equal(y, x[cut])
    dy = np.random.default_rng(1).standard_normal(top).astype(dtype)
    dx, = dev.run(F, "copy_crop", n, dy, 0, len(bottom), dims, np.zeros(bottom, dtype))[2:]
    expected = np.zeros(bottom, dtype)
    expected[cut] = dy
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("shape,axis,tiles", [((2, 3), 1, 2), ((2, 3), 0, 3), ((1,), 0, 5),
                                              ((2, 3, 4, 5), 2, 3), ((3, 1, 2), 1, 1)])
def test_tile(dev, dtype, shape, axis, tiles):
    rng = np.random.default_rng(tiles)
    x = rng.standard_normal(shape).astype(dtype)
    reps = [1] * len(shape)
    reps[axis] = tiles
    expected = np.tile(x, reps)
    inner = int(np.prod(shape[axis:]))
    y, = dev.run(F, "copy_tile_forward", expected.size, x, inner, tiles, np.full(expected.shape, np.nan, dtype))[1:]
    np.testing.assert_array_equal(y, expected)
    dy = rng.standard_normal(expected.shape)
    dx, = dev.run(F, "copy_tile_backward", x.size, dy.astype(dtype), inner, tiles, np.full(shape, np.nan, dtype))[1:]
    folded = dy.reshape(shape[:axis] + (tiles,) + shape[axis:]).sum(axis=axis)
    np.testing.assert_allclose(dx, folded, rtol=1e-5 if dtype == np.float32 else 1e-12)
