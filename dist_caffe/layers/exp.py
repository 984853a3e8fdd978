"""Exp: y = base ^ (shift + scale * x)."""
import math

from .. import kernels
from ..backend import get_array_module
from ..layer import NeuronLayer, register_layer


def log_base(layer, base, field):
    """ln(base), where base -1 stands for e; ConfigError unless base > 0 or base == -1."""
    if base == -1:
        return 1.0
    if base <= 0:
        raise layer.error(field, f"base {base:g} is invalid; give a positive base, or -1 for e")
    return math.log(base)


@register_layer
class ExpLayer(NeuronLayer):
    """y = base^(shift + scale*x) (base -1 means e).  Reads exp_param.base/scale/shift
    (defaults -1, 1, 0). Backward: dx = dy * y * scale * ln(base); safe in place (uses y only).
    """

    type = "Exp"

    def layer_setup(self, bottom, top):
        p = self.param.exp_param
        ln_base = log_base(self, p.base, "exp_param.base")
        self.inner_scale = ln_base * p.scale
        self.outer_scale = 1.0 if p.shift == 0 else math.exp(ln_base * p.shift)

    def forward(self, bottom, top):
        x = bottom[0].data
        y = get_array_module(x).exp(self.inner_scale * x)
        top[0].data[...] = y if self.outer_scale == 1 else self.outer_scale * y

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff * top[0].data * self.inner_scale

    def forward_gpu(self, bottom, top):
        x = bottom[0].data
        kernels.call("neurons.cu", "neurons_exp_forward", x.size, x, top[0].data,
                     self.inner_scale, self.outer_scale)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[0]:
            y = top[0].data
            kernels.call("neurons.cu", "neurons_exp_backward", y.size, y, top[0].diff,
                         bottom[0].diff, self.inner_scale)
