"""Pooling: MAX or AVE over 2-D windows (Caffe's ceil-rounded output size)."""
import itertools

import numpy as np

from .. import kernels, onednn
from ..backend import get_array_module
from ..im2col import pool_divisor, pool_out_size
from ..layer import Layer, register_layer
from ..proto import caffe_pb2

MAX = caffe_pb2.PoolingParameter.MAX
AVE = caffe_pb2.PoolingParameter.AVE
STOCHASTIC = caffe_pb2.PoolingParameter.STOCHASTIC
FLOOR = caffe_pb2.PoolingParameter.FLOOR


def _pair(layer, p, field, default):
    """(h, w) from `field` or from `field_h`/`field_w` (Caffe: one form or the other)."""
    h, w = f"{field}_h", f"{field}_w"
    name = "kernel_size" if field == "kernel" else field
    has_hw = p.HasField(h) or p.HasField(w)
    if has_hw and p.HasField(name):
        raise layer.error(name, f"set either {name} or {h}/{w}, not both")
    if has_hw:
        if field == "kernel" and not (p.HasField(h) and p.HasField(w)):
            raise layer.error(f"{h}/{w}", "a non-square kernel needs both kernel_h and kernel_w")
        return getattr(p, h), getattr(p, w)
    if p.HasField(name) or default is None:
        if not p.HasField(name):
            raise layer.error(name, f"is required (found none); set {name}, or {h} and {w}, "
                                    "or global_pooling: true")
        return getattr(p, name), getattr(p, name)
    return default, default


@register_layer
class PoolingLayer(Layer):
    """Max or average of each (kernel_h x kernel_w) window of a (N, C, H, W) input.

    Reads pooling_param: pool (MAX, AVE), kernel_size | kernel_h/kernel_w, stride |
    stride_h/stride_w, pad | pad_h/pad_w, global_pooling (kernel = the whole input), round_mode.
    Output size per axis: ceil((H + 2 pad - k) / stride) + 1, minus one when pad > 0 and the last
    window would start at or past H + pad. AVE divides by the window's cells inside
    [-pad, H + pad) (padding counts, overhang does not). MAX routes the gradient to the first
    maximum of each window and may give a second top: that argmax (h * W + w) as a float.
    """
    type = "Pooling"
    in_place = False
    exact_num_bottom, min_top, max_top = 1, 1, 2
    # "onednn": float32 numpy arrays go through oneDNN's pooling (see onednn.py) where it
    # computes exactly Caffe's (_engine_method), the library loaded and pooling_param does not
    # say engine: CAFFE; "numpy": never.
    cpu_engine = "onednn"

    def __new__(cls, param, *args, **kwargs):
        # pool: STOCHASTIC is its own class (stochastic_pooling.py) behind the same type name.
        if cls is PoolingLayer and param.pooling_param.pool == STOCHASTIC:
            from .stochastic_pooling import StochasticPoolingLayer
            cls = StochasticPoolingLayer
        return super().__new__(cls)

    def layer_setup(self, bottom, top):
        p = self.param.pooling_param
        self.method = p.pool
        if len(top) > 1 and p.pool != MAX:
            method = caffe_pb2.PoolingParameter.PoolMethod.Name(p.pool)
            raise self.error("top", "only MAX pooling has a second top (the argmax mask); "
                                    f"this layer has pool {method} and {len(top)} tops")
        self.global_pooling = p.global_pooling
        if self.global_pooling:
            if p.HasField("kernel_size") or p.HasField("kernel_h") or p.HasField("kernel_w"):
                raise self.error("kernel_size", "global_pooling: true pools the whole input; "
                                                "remove kernel_size/kernel_h/kernel_w")
            self.kernel = tuple(bottom[0].shape[2:4])
        else:
            self.kernel = _pair(self, p, "kernel", None)
        self.stride = _pair(self, p, "stride", 1)
        self.pad = _pair(self, p, "pad", 0)
        if self.global_pooling and (any(self.pad) or self.stride != (1, 1)):
            raise self.error("global_pooling", f"takes pad 0 and stride 1, found pad {self.pad} "
                                               f"stride {self.stride}")
        if min(self.kernel) < 1 or min(self.stride) < 1:
            raise self.error("kernel_size" if min(self.kernel) < 1 else "stride",
                             f"must be positive, found kernel {self.kernel} stride {self.stride}")
        if any(pd >= k for pd, k in zip(self.pad, self.kernel)):
            raise self.error("pad", f"{self.pad} must be smaller than the kernel {self.kernel}")
        self.ceil_mode = p.round_mode != FLOOR
        self.divisor, self._divisor_key = None, None
        self._plan, self._plan_key = None, None

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) != 4:
            raise self.error("bottom", "needs 4 axes (num, channels, height, width), "
                                       f"found {shape}")
        if self.global_pooling:
            self.kernel = tuple(shape[2:])
        self.size = tuple(shape[2:])
        self.out = tuple(pool_out_size(n, k, s, p, self.ceil_mode) for n, k, s, p in
                         zip(self.size, self.kernel, self.stride, self.pad))
        if min(self.out) < 1:
            raise self.error("kernel_size", f"the kernel {self.kernel} is larger than the padded "
                                            f"input {self.size} (pad {self.pad})")
        for t in top:
            t.reshape(shape[:2] + self.out)
        # Cells past H + pad that the last (ceil-rounded) window may cover: padded too.
        self.pad_after = tuple(max(p, (o - 1) * s + k - n - p) for n, k, s, p, o in
                               zip(self.size, self.kernel, self.stride, self.pad, self.out))
        if self._divisor_key != (self.size, self.kernel):
            self.divisor, self._divisor_key = None, (self.size, self.kernel)

    def _phase_slices(self, num, channels):
        """Per stride phase (a, b): the index of the input cells that land in it, and of
        where they go in the (sh, sw, N, C, Hq, Wq) phase array (see _phases)."""
        (sh, sw), (ph, pw), (h, w) = self.stride, self.pad, self.size
        for a in range(sh):
            for b in range(sw):
                h0, w0 = (a - ph) % sh, (b - pw) % sw   # first input row/column in phase a/b
                nh, nw = len(range(h0, h, sh)), len(range(w0, w, sw))
                r0, c0 = (h0 + ph) // sh, (w0 + pw) // sw
                yield ((slice(None), slice(None), slice(h0, None, sh), slice(w0, None, sw)),
                       (a, b, slice(None), slice(None), slice(r0, r0 + nh), slice(c0, c0 + nw)))

    def _phase_shape(self, x):
        (sh, sw), (ph, pw) = self.stride, self.pad
        hq = -(-(ph + self.size[0] + self.pad_after[0]) // sh)
        wq = -(-(pw + self.size[1] + self.pad_after[1]) // sw)
        return (sh, sw) + x.shape[:2] + (hq + 1, wq)   # a spare row: see _cell

    def _phases(self, x, value):
        """x padded with `value` and split by stride phase: [a, b, n, c, r, q] is the padded
        input at row r * sh + a, column q * sw + b. Each window offset then reads one
        contiguous run per (n, c) plane (_cell); stride-2 views of x ran ~8x slower per
        operation."""
        xp = get_array_module(x)
        out = xp.full(self._phase_shape(x), value, dtype=x.dtype)
        for src, dst in self._phase_slices(*x.shape[:2]):
            out[dst] = x[src]
        return out

    def _cell(self, phases, i, j):
        """The cells window offset (i, j) reads for every output row and every column q of the
        phase grid, as a (N * C, Ho * Wq) view: columns q >= Wo are past the output and are
        dropped by _crop (they may read the next row, or the spare row at the end)."""
        (sh, sw), ho = self.stride, self.out[0]
        plane = phases[i % sh, j % sw]
        n, c, hq, wq = plane.shape
        start = (i // sh) * wq + j // sw
        return plane.reshape(n * c, hq * wq)[:, start:start + ho * wq]

    def _crop(self, grid, num, channels):
        """The (N, C, Ho, Wo) outputs of a (N * C, Ho * Wq) grid (a view)."""
        return grid.reshape(num, channels, self.out[0], -1)[..., :self.out[1]]

    def _offsets(self):
        return itertools.product(range(self.kernel[0]), range(self.kernel[1]))

    def _is_global(self):
        return self.kernel == self.size and not any(self.pad)

    def _engine_method(self, top_count):
        """oneDNN's algorithm that computes exactly this layer, or None. Caffe's average
        divides by the window's cells inside [-pad, H + pad): all of them when no window
        reaches past that (oneDNN's include-padding), those inside the input when pad is 0
        (exclude-padding)."""
        if self.method == MAX:
            return onednn.POOLING_MAX if top_count == 1 else None   # no argmax top there
        if not any(self.pad):
            return onednn.POOLING_AVG_EXCLUDE_PADDING
        if all(a <= p for a, p in zip(self._reach_past(), self.pad)):
            return onednn.POOLING_AVG_INCLUDE_PADDING
        return None

    def _reach_past(self):
        """Per axis, how far the last window reaches past the input (oneDNN's right pad)."""
        return [(o - 1) * s + k - n - p for n, o, k, s, p in
                zip(self.size, self.out, self.kernel, self.stride, self.pad)]

    def _engine_plan(self, x, top_count):
        """The oneDNN plan that runs this layer on float32 numpy arrays, else None."""
        if (self.cpu_engine != "onednn" or type(self) is not PoolingLayer
                or type(x) is not np.ndarray
                or x.dtype != np.float32 or self.method not in (MAX, AVE)
                or self.param.pooling_param.engine == caffe_pb2.PoolingParameter.CAFFE):
            return None
        method = self._engine_method(top_count)
        if method is None or not onednn.available():
            return None
        return onednn.layer_plan(self, (x.shape, method), lambda: onednn.PoolPlan(
            x.shape, x.shape[:2] + self.out, self.kernel, self.stride, self.pad,
            self._reach_past(), method))

    def forward(self, bottom, top):
        x = bottom[0].data
        plan = self._engine_plan(x, len(top))
        if plan is not None:
            return plan.forward(x, top[0].data)
        xp = get_array_module(x)
        if self.method == MAX:
            self._forward_max(x, top, xp)
        else:
            self._forward_ave(x, top[0].data, xp)

    def _kernel_geometry(self):
        return (*self.size, *self.out, *self.kernel, *self.stride, *self.pad)

    def forward_gpu(self, bottom, top):
        x, y = bottom[0].data, top[0].data
        if self.method != MAX:
            return kernels.call("pooling.cu", "pooling_ave_forward", y.size, x,
                                *self._kernel_geometry(), y)
        self.index = get_array_module(x).empty(y.shape, "int32")  # h * W + w of the first max
        kernels.call("pooling.cu", "pooling_max_forward", y.size, x, *self._kernel_geometry(),
                     y, self.index)
        if len(top) > 1:
            top[1].data[...] = self.index

    def backward_gpu(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy, dx = top[0].diff, bottom[0].diff
        if self.method == MAX:
            kernels.call("pooling.cu", "pooling_max_backward", dx.size, dy, self.index,
                         *self._kernel_geometry(), dx)
        else:
            kernels.call("pooling.cu", "pooling_ave_backward", dx.size, dy,
                         *self._kernel_geometry(), dx)

    def _forward_max(self, x, top, xp):
        best = top[0].data
        if self._is_global():
            flat = x.reshape(x.shape[:2] + (-1,))
            self.index = flat.argmax(axis=-1).reshape(best.shape)   # the first maximum
            best[...] = flat.max(axis=-1).reshape(best.shape)
        else:
            self.index = self._max_and_first_index(x, best, xp)
        if len(top) > 1:
            top[1].data[...] = self.index

    def _max_and_first_index(self, x, out, xp):
        """Write each window's maximum (fmax: NaNs skipped) into `out`; return the index
        h * W + w in the input plane of its first maximum (Caffe's mask).

        One pass: the cell's place in the window, i * row + j, is recorded where a cell is
        strictly greater than the running maximum (Caffe's `>` scan keeps the earliest maximum).
        With row >= kw those places grow in scan order, so max(first, place * greater) is that
        update without a (slow) masked store, in a small integer type. A running maximum that
        is NaN (all cells so far NaN) is also replaced by the next number.
        """
        (kh, kw), width = self.kernel, self.size[1]
        row = max(width, kw)    # = W unless padding makes the kernel wider than the input
        itype = xp.dtype(xp.int16 if (kh - 1) * row + kw <= 32767 else xp.int32).type
        phases = self._phases(x, -xp.inf)
        best = self._cell(phases, 0, 0).copy()
        first, term = xp.zeros(best.shape, itype), xp.empty(best.shape, itype)
        greater = xp.empty(best.shape, bool)
        nan_start = bool(xp.isnan(best).any())
        for i, j in list(self._offsets())[1:]:
            cell = self._cell(phases, i, j)
            xp.greater(cell, best, out=greater)
            if nan_start:
                greater |= xp.isnan(best) & ~xp.isnan(cell)
            xp.fmax(best, cell, out=best)
            xp.multiply(greater, itype(i * row + j), out=term)
            xp.maximum(first, term, out=first)
        out[...] = self._crop(best, *x.shape[:2])
        (sh, sw), (ph, pw) = self.stride, self.pad
        start = ((xp.arange(self.out[0], dtype=xp.int32) * sh - ph).reshape(-1, 1) * width
                 + xp.arange(self.out[1], dtype=xp.int32) * sw - pw)  # each window's corner
        index = self._crop(first, *x.shape[:2]) + start             # int32 (start's type)
        if row != width:   # i * row + j -> i * width + j
            index -= (index - start) // row * (row - width)
        return index

    def _forward_ave(self, x, y, xp):
        if self._is_global():
            y[...] = x.sum(axis=(2, 3), keepdims=True) / (self.size[0] * self.size[1])
            return
        phases = self._phases(x, 0)
        total = self._cell(phases, 0, 0).copy()
        for o, (i, j) in enumerate(self._offsets()):
            if o:
                total += self._cell(phases, i, j)
        xp.divide(self._crop(total, *x.shape[:2]), self._divisor(xp, y.dtype), out=y)

    def _divisor(self, xp, dtype):
        if (self.divisor is None or self.divisor.dtype != dtype
                or get_array_module(self.divisor) is not xp):
            self.divisor = pool_divisor(self.size, self.kernel, self.stride, self.pad, self.out,
                                        xp, dtype)
        return self.divisor

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy, dx = top[0].diff, bottom[0].diff
        plan = self._engine_plan(bottom[0].data, len(top))
        if plan is not None:
            return plan.backward(dy, dx)
        xp = get_array_module(dy)
        if self.method == MAX:   # each top cell adds its gradient to its argmax
            n, c = dy.shape[:2]
            plane = self.size[0] * self.size[1]
            flat = self.index + (xp.arange(n * c) * plane).reshape(n, c, 1, 1)
            dx[...] = 0
            xp.add.at(dx.reshape(-1), flat.reshape(-1), dy.reshape(-1))
            return
        if self._is_global():
            dx[...] = dy / (self.size[0] * self.size[1])
            return
        n, c = dx.shape[:2]
        acc = xp.zeros(self._phase_shape(dx), dtype=dx.dtype)   # in phase layout
        grad = xp.zeros_like(self._cell(acc, 0, 0))   # on the grid: 0 past the output
        xp.divide(dy, self._divisor(xp, dy.dtype), out=self._crop(grad, n, c))
        for i, j in self._offsets():
            self._cell(acc, i, j)[...] += grad
        for src, dst in self._phase_slices(*dx.shape[:2]):
            dx[src] = acc[dst]
