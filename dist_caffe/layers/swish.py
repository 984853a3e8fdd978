"""Swish: y = x * sigmoid(beta * x)."""
from .. import kernels
from ..backend import get_array_module
from ..layer import register_layer
from .abs_val import KeepInputNeuronLayer


def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow warnings (through tanh)."""
    return 0.5 * (get_array_module(x).tanh(0.5 * x) + 1)


@register_layer
class SwishLayer(KeepInputNeuronLayer):
    """y = x * sigmoid(beta * x).  Reads swish_param.beta (default 1).

    Backward: dx = dy * (beta * y + s * (1 - beta * y)), s = sigmoid(beta * x) kept from
    forward; y is the top, so the layer may run in place. The GPU kernels recompute s from x
    instead, so forward_gpu keeps a copy of x when in place (KeepInputNeuronLayer).
    """

    type = "Swish"

    def forward(self, bottom, top):
        x, beta = bottom[0].data, self.param.swish_param.beta
        self.sig = sigmoid(beta * x)
        top[0].data[...] = x * self.sig

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            beta, y = self.param.swish_param.beta, top[0].data
            bottom[0].diff[...] = top[0].diff * (beta * y + self.sig * (1 - beta * y))

    def forward_gpu(self, bottom, top):
        x = self.forward_input(bottom, top)
        kernels.call("neurons.cu", "neurons_swish_forward", x.size, x, top[0].data,
                     self.param.swish_param.beta)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self.backward_input(bottom)
            kernels.call("neurons.cu", "neurons_swish_backward", x.size, x, top[0].diff,
                         bottom[0].diff, self.param.swish_param.beta)
