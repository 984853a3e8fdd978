"""BNLL: binomial normal log likelihood, the softplus y = log(1 + exp(x))."""
from .. import kernels
from ..backend import get_array_module
from ..layer import register_layer
from .abs_val import KeepInputNeuronLayer

BNLL_THRESHOLD = 50.0  # Caffe's kBNLL_THRESHOLD: exp(x) is capped at exp(50) in backward


@register_layer
class BNLLLayer(KeepInputNeuronLayer):
    """y = log(1 + exp(x)), computed without overflow; dx = dy * sigmoid(min(x, 50))."""

    type = "BNLL"

    def forward(self, bottom, top):
        x = self.forward_input(bottom, top)
        top[0].data[...] = get_array_module(x).logaddexp(0, x)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self.backward_input(bottom)
            xp = get_array_module(x)
            sig = 0.5 * (xp.tanh(0.5 * xp.minimum(x, BNLL_THRESHOLD)) + 1)
            bottom[0].diff[...] = top[0].diff * sig

    def forward_gpu(self, bottom, top):
        x = self.forward_input(bottom, top)
        kernels.call("neurons.cu", "neurons_bnll_forward", x.size, x, top[0].data)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self.backward_input(bottom)
            kernels.call("neurons.cu", "neurons_bnll_backward", x.size, x, top[0].diff,
                         bottom[0].diff)
