"""ELU: exponential linear unit."""
from .. import kernels
from ..backend import get_array_module
from ..layer import register_layer
from .abs_val import KeepInputNeuronLayer


@register_layer
class ELULayer(KeepInputNeuronLayer):
    """y = x if x > 0 else alpha * (exp(x) - 1).  Reads elu_param.alpha (default 1).

    Backward: dx = dy if x > 0 else dy * (y + alpha).
    """

    type = "ELU"

    def forward(self, bottom, top):
        x, alpha = self.forward_input(bottom, top), self.param.elu_param.alpha
        xp = get_array_module(x)
        top[0].data[...] = xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x, y, alpha = self.backward_input(bottom), top[0].data, self.param.elu_param.alpha
            xp = get_array_module(x)
            bottom[0].diff[...] = top[0].diff * xp.where(x > 0, 1, y + alpha)

    def forward_gpu(self, bottom, top):
        x = self.forward_input(bottom, top)
        kernels.call("neurons.cu", "neurons_elu_forward", x.size, x, top[0].data,
                     self.param.elu_param.alpha)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self.backward_input(bottom)
            kernels.call("neurons.cu", "neurons_elu_backward", x.size, x, top[0].data, top[0].diff,
                         bottom[0].diff, self.param.elu_param.alpha)
