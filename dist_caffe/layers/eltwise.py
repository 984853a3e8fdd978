"""Eltwise: element-wise product, (weighted) sum or maximum of several same-shaped bottoms."""
import numpy as np

from .. import kernels
from ..backend import get_array_module
from ..layer import Layer, register_layer
from ..proto import caffe_pb2

PROD, SUM, MAX = (caffe_pb2.EltwiseParameter.PROD, caffe_pb2.EltwiseParameter.SUM,
                  caffe_pb2.EltwiseParameter.MAX)


@register_layer
class EltwiseLayer(Layer):
    """y = prod_i x_i | sum_i coeff_i * x_i | max_i x_i over bottoms of one shape.

    Reads eltwise_param: operation (SUM), coeff (one per bottom, SUM only; default all 1),
    stable_prod_grad (true: dx_i = dy * prod_{j != i} x_j; false: dy * y / x_i).
    MAX sends the gradient to the bottom that held the maximum; ties go as in Caffe: between
    bottoms 0 and 1 to bottom 1, after that to the earlier bottom.
    """
    type = "Eltwise"
    min_bottom, exact_num_top = 2, 1

    def layer_setup(self, bottom, top):
        p = self.param.eltwise_param
        self.op = p.operation
        if p.coeff and len(p.coeff) != len(bottom):
            raise self.error("eltwise_param.coeff", f"found {len(p.coeff)} values for "
                                                    f"{len(bottom)} bottoms; give one per bottom")
        if p.coeff and self.op != SUM:
            op = caffe_pb2.EltwiseParameter.EltwiseOp.Name(self.op)
            raise self.error("eltwise_param.coeff", f"coefficients apply only to operation: "
                                                    f"SUM, found {op}; remove coeff or use SUM")
        self.coeff = list(p.coeff) or [1.0] * len(bottom)

    def _bottom_name(self, i):
        names = self.param.bottom
        return f"bottom[{i}] '{names[i]}'" if i < len(names) else f"bottom[{i}]"

    def reshape(self, bottom, top):
        for i, b in enumerate(bottom[1:], 1):
            if b.shape != bottom[0].shape:
                raise self.error("bottom", f"{self._bottom_name(i)} has shape {b.shape} but "
                                 f"{self._bottom_name(0)} has {bottom[0].shape}; all bottoms of "
                                 "Eltwise need the same shape")
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xs = [b.data for b in bottom]
        xp = get_array_module(xs[0])
        if top[0] is bottom[0] and self.op == PROD:
            self.x0_saved = xs[0].copy()  # in place: backward still needs bottom 0
        if self.op == PROD:
            y = xs[0] * xs[1]
            for x in xs[2:]:
                y *= x
        elif self.op == SUM:
            y = self.coeff[0] * xs[0]
            for c, x in zip(self.coeff[1:], xs[1:]):
                y += c * x
        else:
            # argmax keeps the first maximum; putting bottom 1 first reproduces Caffe's ties.
            order = [1, 0] + list(range(2, len(xs)))
            stack = xp.stack([xs[i] for i in order])
            pick = stack.argmax(axis=0)
            y = xp.take_along_axis(stack, pick[None], axis=0)[0]
            self.max_idx = xp.asarray(order)[pick]
        top[0].data[...] = y

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        xs = [b.data for b in bottom]
        if top[0] is bottom[0] and self.op == PROD:
            xs[0] = self.x0_saved
        # Bottom 0 last: in place its diff is the top's, which the others still read.
        for i, b in reversed(list(enumerate(bottom))):
            if not propagate_down[i]:
                continue
            if self.op == PROD:
                if self.param.eltwise_param.stable_prod_grad:
                    others = [x for j, x in enumerate(xs) if j != i]
                    g = others[0].copy()
                    for x in others[1:]:
                        g *= x
                else:
                    g = top[0].data / xs[i]
                b.diff[...] = g * dy
            elif self.op == SUM:
                b.diff[...] = self.coeff[i] * dy
            else:
                b.diff[...] = dy * (self.max_idx == i)

    def forward_gpu(self, bottom, top):
        # One launch per bottom straight into the top: no stacked copy, no temporaries. In place
        # (top is bottom 0) launch 0 reads and writes the same cells, which is safe.
        y, n = top[0].data, top[0].count
        if top[0] is bottom[0] and self.op == PROD:
            self.x0_saved = bottom[0].data.copy()  # in place: backward still needs bottom 0
        if self.op == MAX:
            self.max_idx = get_array_module(y).empty(y.shape, np.int32)   # the winning bottom
        for i, b in enumerate(bottom):
            if self.op == PROD:
                kernels.call("eltwise.cu", "eltwise_prod_forward", n, b.data, int(i > 0), y)
            elif self.op == SUM:
                kernels.call("eltwise.cu", "eltwise_sum_forward", n, b.data, self.coeff[i],
                             int(i > 0), y)
            else:
                kernels.call("eltwise.cu", "eltwise_max_forward", n, b.data, i, y, self.max_idx)

    def backward_gpu(self, top, propagate_down, bottom):
        dy, n = top[0].diff, top[0].count
        xs = [b.data for b in bottom]
        if top[0] is bottom[0] and self.op == PROD:
            xs[0] = self.x0_saved
        # Bottom 0 last: in place its diff is the top's, which the others still read.
        for i, b in reversed(list(enumerate(bottom))):
            if not propagate_down[i]:
                continue
            dx = b.diff
            if self.op == MAX:
                kernels.call("eltwise.cu", "eltwise_max_backward", n, dy, self.max_idx, i, dx)
            elif self.op == SUM:   # dx = coeff * dy
                kernels.call("eltwise.cu", "eltwise_sum_forward", n, dy, self.coeff[i], 0, dx)
            elif self.param.eltwise_param.stable_prod_grad:
                # dx = dy * prod_{j != i} x_j, built in dx from dy on (in place dx is dy).
                kernels.call("eltwise.cu", "eltwise_prod_forward", n, dy, 0, dx)
                for j, x in enumerate(xs):
                    if j != i:
                        kernels.call("eltwise.cu", "eltwise_prod_forward", n, x, 1, dx)
            else:
                kernels.call("eltwise.cu", "eltwise_prod_backward", n, dy, top[0].data, xs[i], dx)
