"""Reduction: sum, absolute sum, sum of squares or mean over the trailing axes."""
from ..backend import get_array_module
from ..layer import Layer, register_layer
from ..proto import caffe_pb2
from .tile import canonical_axis

Op = caffe_pb2.ReductionParameter


@register_layer
class ReductionLayer(Layer):
    """y[i] = coeff * op(x[i, ...]) over every axis from `axis` on; the top keeps the axes
    before it (axis 0 gives a 0-D scalar). Reads reduction_param.operation (SUM, ASUM, SUMSQ,
    MEAN), axis (default 0) and coeff (default 1).
    """

    type = "Reduction"
    exact_num_bottom = exact_num_top = 1

    def layer_setup(self, bottom, top):
        p = self.param.reduction_param
        if p.operation not in (Op.SUM, Op.ASUM, Op.SUMSQ, Op.MEAN):
            raise self.error("reduction_param.operation", f"unknown operation {p.operation}; "
                                                          "use SUM, ASUM, SUMSQ or MEAN")
        self.op, self.coeff = p.operation, p.coeff

    def reshape(self, bottom, top):
        self.axis = canonical_axis(self, bottom[0], self.param.reduction_param.axis,
                                   "reduction_param.axis")
        top[0].reshape(bottom[0].shape[:self.axis])
        self.num, self.dim = bottom[0].count_range(0, self.axis), bottom[0].count_range(self.axis)

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.num, self.dim)
        xp = get_array_module(x)
        if self.op == Op.ASUM:
            x = xp.abs(x)
        elif self.op == Op.SUMSQ:
            x = x * x
        scale = self.coeff / self.dim if self.op == Op.MEAN else self.coeff
        top[0].data[...] = (x.sum(axis=1) * scale).reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff.reshape(self.num, 1) * self.coeff
        x = bottom[0].data.reshape(self.num, self.dim)
        xp = get_array_module(x)
        if self.op == Op.SUM:
            g = xp.broadcast_to(dy, x.shape)
        elif self.op == Op.MEAN:
            g = xp.broadcast_to(dy / self.dim, x.shape)
        elif self.op == Op.ASUM:
            g = xp.sign(x) * dy
        else:
            g = 2 * x * dy
        bottom[0].diff[...] = g.reshape(bottom[0].shape)
