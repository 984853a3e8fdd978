"""TanH: the hyperbolic tangent."""
from .. import kernels
from ..backend import get_array_module
from ..layer import NeuronLayer, register_layer


@register_layer
class TanHLayer(NeuronLayer):
    """y = tanh(x); no params. Backward uses only the top: dx = dy * (1 - y^2) (works in place)."""
    type = "TanH"

    def forward(self, bottom, top):
        x = bottom[0].data
        top[0].data[...] = get_array_module(x).tanh(x)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            y = top[0].data
            bottom[0].diff[...] = top[0].diff * (1 - y * y)

    def forward_gpu(self, bottom, top):
        x = bottom[0].data
        kernels.call("neurons.cu", "neurons_tanh_forward", x.size, x, top[0].data)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[0]:
            y = top[0].data
            kernels.call("neurons.cu", "neurons_tanh_backward", y.size, y, top[0].diff,
                         bottom[0].diff)
