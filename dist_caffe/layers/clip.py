"""Clip: y = min(max(x, min), max)."""
from .. import kernels
from ..backend import get_array_module
from ..layer import register_layer
from .abs_val import KeepInputNeuronLayer


@register_layer
class ClipLayer(KeepInputNeuronLayer):
    """y = min(max(x, clip_param.min), clip_param.max) (both required).

    Backward: dx = dy where min <= x <= max, else 0.
    """

    type = "Clip"

    def layer_setup(self, bottom, top):
        p = self.param.clip_param
        if not (p.HasField("min") and p.HasField("max")):
            raise self.error("clip_param", "needs both min and max, e.g. clip_param { min: 0 max: 6 }")
        if p.min > p.max:
            raise self.error("clip_param.min", f"min {p.min:g} is above max {p.max:g}; swap them")
        self.lo, self.hi = p.min, p.max

    def forward(self, bottom, top):
        x = self.forward_input(bottom, top)
        top[0].data[...] = get_array_module(x).clip(x, self.lo, self.hi)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self.backward_input(bottom)
            bottom[0].diff[...] = top[0].diff * ((x >= self.lo) & (x <= self.hi))

    def forward_gpu(self, bottom, top):
        x = self.forward_input(bottom, top)
        kernels.call("neurons.cu", "neurons_clip_forward", x.size, x, top[0].data, self.lo, self.hi)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self.backward_input(bottom)
            kernels.call("neurons.cu", "neurons_clip_backward", x.size, x, top[0].diff,
                         bottom[0].diff, self.lo, self.hi)
