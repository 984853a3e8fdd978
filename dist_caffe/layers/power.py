"""Power: y = (shift + scale * x) ^ power."""
from .. import kernels
from ..layer import register_layer
from .abs_val import KeepInputNeuronLayer


@register_layer
class PowerLayer(KeepInputNeuronLayer):
    """y = (shift + scale * x) ^ power.  Reads power_param.power/scale/shift (defaults 1, 1, 0).

    When power * scale is 0 the output is the constant shift^power (1 for power 0) and the
    gradient is 0, as in Caffe. Otherwise dx = dy * power * scale * (shift + scale*x)^(power-1).
    """

    type = "Power"

    def layer_setup(self, bottom, top):
        p = self.param.power_param
        self.power, self.scale, self.shift = p.power, p.scale, p.shift
        self.diff_scale = self.power * self.scale

    def forward(self, bottom, top):
        x = self.forward_input(bottom, top)
        if self.diff_scale == 0:
            top[0].data[...] = 1.0 if self.power == 0 else self.shift ** self.power
            return
        base = self.shift + self.scale * x if (self.scale, self.shift) != (1, 0) else x
        top[0].data[...] = base if self.power == 1 else base ** self.power

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if self.diff_scale == 0:
            bottom[0].diff[...] = 0
            return
        if self.power == 1:
            bottom[0].diff[...] = self.diff_scale * top[0].diff
            return
        x = self.backward_input(bottom)
        base = self.shift + self.scale * x
        grad = self.diff_scale * (base if self.power == 2 else base ** (self.power - 1))
        bottom[0].diff[...] = top[0].diff * grad

    def forward_gpu(self, bottom, top):
        x = self.forward_input(bottom, top)
        kernels.call("neurons.cu", "neurons_power_forward", x.size, x, top[0].data,
                     self.power, self.scale, self.shift)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self.backward_input(bottom)
            kernels.call("neurons.cu", "neurons_power_backward", x.size, x, top[0].diff,
                         bottom[0].diff, self.power, self.scale, self.shift)
