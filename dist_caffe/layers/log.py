"""Log: y = log_base(shift + scale * x)."""
from .. import kernels
from ..backend import get_array_module
from ..layer import register_layer
from .abs_val import KeepInputNeuronLayer
from .exp import log_base


@register_layer
class LogLayer(KeepInputNeuronLayer):
    """y = log_base(shift + scale*x) (base -1 means e).  Reads log_param.base/scale/shift
    (defaults -1, 1, 0). Backward: dx = dy * scale / (ln(base) * (shift + scale*x)).
    """

    type = "Log"

    def layer_setup(self, bottom, top):
        p = self.param.log_param
        self.base_scale = 1.0 / log_base(self, p.base, "log_param.base")
        self.scale, self.shift = p.scale, p.shift

    def forward(self, bottom, top):
        x = self.forward_input(bottom, top)
        y = get_array_module(x).log(self.shift + self.scale * x)
        top[0].data[...] = y if self.base_scale == 1 else self.base_scale * y

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self.backward_input(bottom)
            bottom[0].diff[...] = top[0].diff * (self.scale * self.base_scale) / (
                self.shift + self.scale * x)

    def forward_gpu(self, bottom, top):
        x = self.forward_input(bottom, top)
        kernels.call("neurons.cu", "neurons_log_forward", x.size, x, top[0].data,
                     self.scale, self.shift, self.base_scale)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self.backward_input(bottom)
            kernels.call("neurons.cu", "neurons_log_backward", x.size, x, top[0].diff,
                         bottom[0].diff, self.scale, self.shift, self.base_scale)
