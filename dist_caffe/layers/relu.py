"""ReLU: rectified linear unit with an optional leak."""
from .. import kernels
from ..backend import get_array_module
from ..layer import NeuronLayer, register_layer


@register_layer
class ReLULayer(NeuronLayer):
    """y = x if x > 0 else negative_slope * x.  Reads relu_param.negative_slope (default 0).

    Backward takes the sign from bottom.data, which in place is the top: for a slope >= 0 its
    sign is the input's, so the gradient dy * (1 if x > 0 else negative_slope) is unchanged.
    """
    type = "ReLU"

    # max/min/multiply rather than where(): where() on a mixed-sign mask measured ~10x slower.
    def forward(self, bottom, top):
        x, y, s = bottom[0].data, top[0].data, self.param.relu_param.negative_slope
        xp = get_array_module(x)
        leak = s * xp.minimum(x, 0) if s else None   # before an in-place top overwrites x
        xp.maximum(x, 0, out=y)
        if s:
            y += leak

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x, dy, dx = bottom[0].data, top[0].diff, bottom[0].diff
        s = self.param.relu_param.negative_slope
        xp = get_array_module(x)
        positive = x > 0
        if s:   # dy * (1 if x > 0 else s), the factor exactly 1 or s in x's dtype
            factor = (~positive).astype(x.dtype)
            factor *= s
            factor += positive
            xp.multiply(dy, factor, out=dx)
        else:
            xp.multiply(dy, positive, out=dx)

    def forward_gpu(self, bottom, top):
        x = bottom[0].data
        kernels.call("neurons.cu", "neurons_relu_forward", x.size, x, top[0].data,
                     self.param.relu_param.negative_slope)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = bottom[0].data
            kernels.call("neurons.cu", "neurons_relu_backward", x.size, x, top[0].diff,
                         bottom[0].diff, self.param.relu_param.negative_slope)
