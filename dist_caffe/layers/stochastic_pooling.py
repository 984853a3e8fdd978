"""STOCHASTIC pooling (Zeiler & Fergus): sample in TRAIN, probability-weighted mean in TEST.

`StochasticPoolingLayer` is the Pooling layer for `pool: STOCHASTIC`; `make_pooling_layer`
builds the right class for any PoolingParameter (SPP uses it). The Pooling type dispatches
here through the hook in pooling.py (`PoolingLayer.__new__`).
"""
import numpy as np

from ..backend import get_array_module
from ..im2col import pad_spatial, windows
from ..layer import TRAIN
from ..proto import caffe_pb2
from .pooling import MAX, STOCHASTIC, PoolingLayer


def make_pooling_layer(param, phase=TRAIN, dtype=np.float32):
    """A Pooling layer for `param` (a LayerParameter): StochasticPoolingLayer for STOCHASTIC."""
    cls = StochasticPoolingLayer if param.pooling_param.pool == STOCHASTIC else PoolingLayer
    return cls(param, phase=phase, dtype=dtype)


class StochasticPoolingLayer(PoolingLayer):
    """Pooling with pool: STOCHASTIC over non-negative inputs (e.g. after a ReLU).

    TRAIN: each window picks one of its cells at random with probability proportional to the
    cell's value (Caffe draws r ~ U(0, 1) and takes the first cell whose running sum reaches
    r * the window sum) and outputs it; backward routes the gradient to the picked cell.
    TEST: each window outputs sum(x^2) / sum(x) (0 when the sum is not positive), the
    expectation of the TRAIN pick; its backward is that function's exact gradient.
    Reads the same pooling_param fields as Pooling; pad must be 0 (as in Caffe), one top.
    """

    def layer_setup(self, bottom, top):
        p = self.param.pooling_param
        if p.pad or p.pad_h or p.pad_w:
            raise self.error("pad", "padding is implemented only for MAX and AVE pooling; "
                                    "remove pad/pad_h/pad_w or use MAX or AVE")
        if len(top) > 1:
            raise self.error("top", f"STOCHASTIC pooling has one top, found {len(top)}")
        # Parse the window geometry exactly as the base class does for MAX.
        as_max = caffe_pb2.LayerParameter()
        as_max.CopyFrom(self.param)
        as_max.pooling_param.pool = MAX
        self.param, original = as_max, self.param
        try:
            super().layer_setup(bottom, top)
        finally:
            self.param = original
        self.method = STOCHASTIC

    # Pooling may send its GPU passes to MAX/AVE kernels; STOCHASTIC runs its own xp code.
    def forward_gpu(self, bottom, top):
        return self.forward(bottom, top)

    def backward_gpu(self, top, propagate_down, bottom):
        return self.backward(top, propagate_down, bottom)

    def _windows(self, x, value):
        """The (N, C, kh, kw, Ho, Wo) windows view of x padded with `value`."""
        if any(self.pad) or any(self.pad_after):
            x = pad_spatial(x, self.pad, self.pad_after, value)
        return windows(x, self.kernel, self.stride, (1, 1), self.out)

    def _window_values(self, x):
        """(N, C, K, Ho, Wo): each window's cells in row-major order (past the edge: 0)."""
        win = self._windows(x, 0)
        n, c, kh, kw, ho, wo = win.shape
        return win.reshape(n, c, kh * kw, ho, wo)

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        values = self._window_values(x)
        if self.phase == TRAIN:
            cumsum = values.cumsum(axis=2)
            # Drawn on the host from dist_caffe's generator: the same picks on CPU and GPU.
            r = xp.asarray(self.rng.random(top[0].shape), dtype=x.dtype)
            picked = (cumsum >= (r * cumsum[:, :, -1])[:, :, None]).argmax(axis=2)
            self.argmax = picked
            top[0].data[...] = xp.take_along_axis(values, picked[:, :, None], axis=2)[:, :, 0]
        else:
            total, squares = values.sum(axis=2), (values * values).sum(axis=2)
            top[0].data[...] = xp.where(total > 0, squares / xp.where(total > 0, total, 1), 0)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy, x = top[0].diff, bottom[0].data
        xp = get_array_module(dy)
        values = self._window_values(x)
        if self.phase == TRAIN:
            k = xp.arange(values.shape[2]).reshape(1, 1, -1, 1, 1)
            grad = xp.where(k == self.argmax[:, :, None], dy[:, :, None], 0)
        else:
            total = values.sum(axis=2, keepdims=True)
            squares = (values * values).sum(axis=2, keepdims=True)
            safe = xp.where(total > 0, total, 1)
            grad = xp.where(total > 0, (2 * values * safe - squares) / (safe * safe), 0)
            grad = grad * dy[:, :, None]
        self._scatter_windows(grad, bottom[0].diff, xp)

    def _scatter_windows(self, grad, dx, xp):
        """dx = the sum over windows of each window cell's gradient (the windows' adjoint)."""
        n, c = dx.shape[:2]
        kh, kw = self.kernel
        (sh, sw), (ho, wo) = self.stride, self.out
        acc = xp.zeros((n, c) + tuple(s + a for s, a in zip(self.size, self.pad_after)), dx.dtype)
        for i in range(kh):
            for j in range(kw):
                rows, cols = slice(i, i + (ho - 1) * sh + 1, sh), slice(j, j + (wo - 1) * sw + 1, sw)
                acc[:, :, rows, cols] += grad[:, :, i * kw + j]
        dx[...] = acc[:, :, :self.size[0], :self.size[1]]
