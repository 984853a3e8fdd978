"""AbsVal: y = |x|; and KeepInputNeuronLayer, the base of neuron layers whose backward reads x."""
from .. import kernels
from ..backend import get_array_module
from ..layer import NeuronLayer, register_layer


class KeepInputNeuronLayer(NeuronLayer):
    """A NeuronLayer whose backward needs the input x, not only the output.

    Run in place (top is bottom), forward overwrites x; so `forward_input` keeps a copy of
    it first (as Caffe's PReLU does) and `backward_input` hands that copy to backward.
    Out of place nothing is copied.
    """

    _kept = None

    def forward_input(self, bottom, top):
        x = bottom[0].data
        self._kept = x.copy() if top[0] is bottom[0] else None
        return x

    def backward_input(self, bottom):
        return bottom[0].data if self._kept is None else self._kept


@register_layer
class AbsValLayer(KeepInputNeuronLayer):
    """y = |x|; backward dx = sign(x) * dy (0 at x = 0, as Caffe's caffe_cpu_sign)."""

    type = "AbsVal"

    def forward(self, bottom, top):
        x = self.forward_input(bottom, top)
        top[0].data[...] = get_array_module(x).abs(x)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self.backward_input(bottom)
            bottom[0].diff[...] = get_array_module(x).sign(x) * top[0].diff

    def forward_gpu(self, bottom, top):
        x = self.forward_input(bottom, top)
        kernels.call("neurons.cu", "neurons_absval_forward", x.size, x, top[0].data)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self.backward_input(bottom)
            kernels.call("neurons.cu", "neurons_absval_backward", x.size, x, top[0].diff,
                         bottom[0].diff)
