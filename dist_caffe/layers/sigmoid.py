"""Sigmoid: the logistic function."""
from .. import kernels
from ..backend import get_array_module
from ..layer import NeuronLayer, register_layer


@register_layer
class SigmoidLayer(NeuronLayer):
    """y = 1 / (1 + exp(-x)), computed as 0.5 * tanh(x / 2) + 0.5 (no overflow); no params.

    Backward uses only the top: dx = dy * y * (1 - y), so it works in place.
    """
    type = "Sigmoid"

    def forward(self, bottom, top):
        x = bottom[0].data
        top[0].data[...] = 0.5 * get_array_module(x).tanh(0.5 * x) + 0.5

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            y = top[0].data
            bottom[0].diff[...] = top[0].diff * y * (1 - y)

    def forward_gpu(self, bottom, top):
        x = bottom[0].data
        kernels.call("neurons.cu", "neurons_sigmoid_forward", x.size, x, top[0].data)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[0]:
            y = top[0].data
            kernels.call("neurons.cu", "neurons_sigmoid_backward", y.size, y, top[0].diff,
                         bottom[0].diff)
