"""im2col / col2im and pooling-window helpers for N-D batches, written once over numpy/cupy.

Arrays are batches ``x`` of shape (N, C, *spatial). A convolution geometry is given per
spatial axis (an int applies to every axis): kernel k, stride s, pad p, dilation d.

``im2col`` lays the receptive fields of the whole batch out as one matrix so that a
convolution is one GEMM ``W (O, C*K) @ col (C*K, columns)``, K = prod(kernel):

* rows are ordered (c, *kernel offset), as Caffe's col buffer;
* columns are ordered (n, *output position) by default -- for N = 1 exactly Caffe's layout --
  or (*output position, n) with ``batch_inner=True``.

Both layouts hold the same numbers; they differ in speed. The copies run along the innermost
axis, which is the output width with the default order, and (output width x N) with
``batch_inner`` at stride 1: the latter is much faster for small images (LeNet, 13x13 conv
layers) at the price of transposing the input and output.

``col2im`` is the adjoint of ``im2col`` (each column entry is added back where it was read):
it turns the GEMM's gradient w.r.t. ``col`` into the gradient w.r.t. ``x``. Both are one
strided copy or ``prod(kernel)`` strided adds over the whole batch, never a loop over pixels.
"""
import itertools
import math

import numpy as np

from . import backend, kernels
from .backend import get_array_module


def as_tuple(value, nd):
    """`value` (an int or a sequence of 1 or `nd` ints) as a tuple of `nd` ints."""
    if isinstance(value, int):
        return (value,) * nd
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * nd
    if len(value) != nd:
        raise ValueError(f"{len(value)} values for {nd} spatial axes")
    return value


def conv_out_size(size, kernel, stride=1, pad=0, dilation=1):
    """Output length of a convolution: (size + 2p - (d(k-1) + 1)) // s + 1 (may be <= 0)."""
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


def pool_out_size(size, kernel, stride=1, pad=0, ceil_mode=True):
    """Caffe's pooled length: ceil (or floor) of (size + 2p - k) / s, plus 1; with padding, a
    last window that would start at or beyond size + pad is dropped."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if pad > 0 and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def pool_divisor(size, kernel, stride, pad, out, xp=None, dtype=None):
    """Caffe's AVE-pooling divisor per output position, shape `out` (one entry per axis).

    A window counts its cells inside [-pad, size + pad), padding included, but not the part
    hanging past size + pad (which ceil rounding can create).
    """
    counts = []
    for n, k, s, p, o in zip(size, kernel, stride, pad, out):
        start = np.arange(o) * s - p
        counts.append(np.minimum(start + k, n + p) - start)
    div = counts[0].astype(np.float64)
    for c in counts[1:]:
        div = np.multiply.outer(div, c)
    return (xp or np).asarray(div, dtype=dtype or np.float64)


def pad_spatial(x, before, after, value=0, first_axis=2):
    """A copy of x with axes first_axis.. padded by `before`/`after` cells of `value`."""
    xp = get_array_module(x)
    nd = len(before)
    shape = list(x.shape)
    for a in range(nd):
        shape[first_axis + a] += before[a] + after[a]
    out = xp.full(shape, value, dtype=x.dtype) if value else xp.zeros(shape, dtype=x.dtype)
    out[interior(x.shape, before, first_axis)] = x
    return out


def interior(shape, before, first_axis=2):
    """Index of the unpadded part of an array padded by `before` (see pad_spatial)."""
    idx = [slice(None)] * len(shape)
    for a, b in enumerate(before):
        idx[first_axis + a] = slice(b, b + shape[first_axis + a])
    return tuple(idx)


def windows(x, kernel, stride, dilation, out_shape, first_axis=2):
    """A strided view (no copy) of every window of x.

    The spatial axes x.shape[first_axis:first_axis + nd] are each split into (kernel offset,
    output position); the view has shape x.shape[:first_axis] + kernel + out_shape +
    x.shape[first_axis + nd:], and
    view[..., i, j, oh, ow, ...] = x[..., oh*s + i*d, ow*s + j*d, ...].
    x must be large enough (i.e. already padded) along those axes.
    """
    xp = get_array_module(x)
    nd, f, st = len(kernel), first_axis, x.strides
    shape = x.shape[:f] + tuple(kernel) + tuple(out_shape) + x.shape[f + nd:]
    strides = (st[:f] + tuple(st[f + a] * dilation[a] for a in range(nd))
               + tuple(st[f + a] * stride[a] for a in range(nd)) + st[f + nd:])
    return xp.lib.stride_tricks.as_strided(x, shape, strides)


def offset_slices(offset, stride, dilation, out_shape):
    """Per spatial axis, the slice of a padded array read by kernel offset `offset`."""
    return tuple(slice(i * d, i * d + (o - 1) * s + 1, s)
                 for i, s, d, o in zip(offset, stride, dilation, out_shape))


class ConvGeometry:
    """Kernel, stride, pad and dilation of an N-D convolution over inputs of spatial `size`."""

    def __init__(self, size, kernel, stride=1, pad=0, dilation=1):
        nd = len(size)
        self.size = tuple(int(v) for v in size)
        self.kernel, self.stride = as_tuple(kernel, nd), as_tuple(stride, nd)
        self.pad, self.dilation = as_tuple(pad, nd), as_tuple(dilation, nd)
        self.out = tuple(conv_out_size(*a) for a in zip(self.size, self.kernel, self.stride,
                                                         self.pad, self.dilation))
        self.nd = nd
        self.kernel_count = math.prod(self.kernel)
        self.out_count = math.prod(self.out)

    def col_shape(self, num, channels):
        """(rows, columns) of im2col's matrix for `num` images of `channels` channels."""
        return channels * self.kernel_count, num * self.out_count


def _col_strides(g, num, batch_inner):
    """(image, row, position) strides of the (C*K, N*P) matrix in the two column orders."""
    p = g.out_count
    return (1, p * num, num) if batch_inner else (p, num * p, 1)


def im2col(x, geometry, batch_inner=False, out=None):
    """The (C*K, N*P) matrix of x's receptive fields (see the module docstring).

    x: (N, C, *geometry.size); out: an optional contiguous array with as many elements.
    """
    xp = get_array_module(x)
    g, nd = geometry, geometry.nd
    num, channels = x.shape[:2]
    if nd == 2 and backend.is_gpu_array(x):  # one kernel writes the matrix in either order
        rows, cols = g.col_shape(num, channels)
        out = xp.empty((rows, cols), x.dtype) if out is None else out.reshape(rows, cols)
        kernels.call("im2col.cu", "im2col_im2col", num * channels * g.out_count,
                     xp.ascontiguousarray(x), channels, *g.size, *g.kernel, *g.pad, *g.stride,
                     *g.dilation, *g.out, *_col_strides(g, num, batch_inner), out)
        return out
    if batch_inner:   # (C, *padded, N): output width and batch are adjacent in memory
        src = pad_spatial(x.transpose(tuple(range(1, nd + 2)) + (0,)), g.pad, g.pad, first_axis=1)
        view = windows(src, g.kernel, g.stride, g.dilation, g.out, first_axis=1)
    else:             # (N, C, *padded) -> windows (N, C, *k, *o) -> (C, *k, N, *o)
        src = pad_spatial(x, g.pad, g.pad) if any(g.pad) else x
        view = windows(src, g.kernel, g.stride, g.dilation, g.out)
        kernel_axes, out_axes = tuple(range(2, nd + 2)), tuple(range(nd + 2, 2 * nd + 2))
        view = view.transpose((1,) + kernel_axes + (0,) + out_axes)
    rows, cols = g.col_shape(num, channels)
    if out is None:
        out = xp.empty((rows, cols), dtype=x.dtype)
    xp.copyto(out.reshape(view.shape), view)
    return out.reshape(rows, cols)


def col2im(col, geometry, num, channels, batch_inner=False, out=None):
    """The adjoint of im2col: sum the columns back into a (num, channels, *size) array.

    col: the (C*K, N*P) matrix in the same column order im2col produced; the result is written
    into `out` when given (overwriting it), else into a new array.
    """
    xp = get_array_module(col)
    g, nd = geometry, geometry.nd
    if nd == 2 and backend.is_gpu_array(col):
        shape = (num, channels) + g.size
        out = xp.empty(shape, col.dtype) if out is None else out.reshape(shape)
        kernels.call("im2col.cu", "im2col_col2im", out.size, xp.ascontiguousarray(col), channels,
                     *g.size, *g.kernel, *g.pad, *g.stride, *g.dilation, *g.out,
                     *_col_strides(g, num, batch_inner), out)
        return out
    padded = tuple(n + 2 * p for n, p in zip(g.size, g.pad))
    written = False   # True when the sums went straight into `out`
    if batch_inner:
        acc = xp.zeros((channels,) + padded + (num,), dtype=col.dtype)
        cols = col.reshape((channels,) + g.kernel + g.out + (num,))
        for offset in itertools.product(*map(range, g.kernel)):
            sl = offset_slices(offset, g.stride, g.dilation, g.out)
            acc[(slice(None),) + sl] += cols[(slice(None),) + offset]
        result = acc[interior((channels,) + g.size + (num,), g.pad, 1)]
        result = result.transpose((nd + 1,) + tuple(range(nd + 1)))
    else:
        if out is not None and not any(g.pad):
            acc, written = out.reshape((num, channels) + g.size), True
            acc[...] = 0
        else:
            acc = xp.zeros((num, channels) + padded, dtype=col.dtype)
        # (C, *k, N, *o) -> per offset (C, N, *o) -> (N, C, *o)
        cols = col.reshape((channels,) + g.kernel + (num,) + g.out)
        for offset in itertools.product(*map(range, g.kernel)):
            sl = offset_slices(offset, g.stride, g.dilation, g.out)
            acc[(slice(None), slice(None)) + sl] += cols[(slice(None),) + offset].swapaxes(0, 1)
        result = acc[interior((num, channels) + g.size, g.pad)]
    if out is None:
        return xp.ascontiguousarray(result)
    out = out.reshape((num, channels) + g.size)
    if not written:
        xp.copyto(out, result)
    return out


# -- channels-last patches ------------------------------------------------------------------
# ``im2row`` is the transpose layout, for the CPU: one row per output position (n, *o) and one
# column per (g, *kernel offset, c), c = channel within group g. Built from a channels-last
# copy of x, each copied run is (kernel width x channels) long instead of the output width,
# and the GEMM rows (N*P, K*Cg) @ W (K*Cg, Og) has its large dimension first, where
# OpenBLAS's kernels are fastest. Convolution runs it on a few images at a time so the matrix
# stays in cache (dist_caffe/layers/convolution.py).

def im2row(x, geometry, group=1, out=None):
    """The (N*P, C*K) matrix of x's receptive fields, rows (n, *output position) and columns
    (group, *kernel offset, channel within the group). x: (N, C, *geometry.size)."""
    xp = get_array_module(x)
    g, nd = geometry, geometry.nd
    num, channels = x.shape[:2]
    # (N, G, Cg, *size) -> (N, *size, G, Cg), zero-padded: a channels-last copy
    src = x.reshape((num, group, channels // group) + g.size)
    src = pad_spatial(src.transpose((0,) + tuple(range(3, nd + 3)) + (1, 2)), g.pad, g.pad,
                      first_axis=1)
    view = windows(src, g.kernel, g.stride, g.dilation, g.out, first_axis=1)  # (N, *k, *o, G, Cg)
    kernel_axes, out_axes = tuple(range(1, nd + 1)), tuple(range(nd + 1, 2 * nd + 1))
    order = (0,) + out_axes + (2 * nd + 1,) + kernel_axes + (2 * nd + 2,)   # (N, *o, G, *k, Cg)
    shape = (num,) + g.out + (group,) + g.kernel + (channels // group,)
    rows, cols = num * g.out_count, channels * g.kernel_count
    out = xp.empty((rows, cols), x.dtype) if out is None else out.reshape(rows, cols)
    xp.copyto(out.reshape(shape), view.transpose(order))
    return out
