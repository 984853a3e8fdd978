"""Softmax over one axis."""
from .. import kernels
from ..backend import get_array_module
from ..layer import Layer, register_layer


def canonical_axis(layer, blob, field, axis):
    """`axis` (from prototxt `field`) made non-negative for `blob`; ConfigError when out of range."""
    try:
        return blob.canonical_axis_index(axis)
    except IndexError:
        n = blob.num_axes
        raise layer.error(field, f"axis {axis} is out of range for the {n}-D input {blob.shape}; "
                                 f"give an axis in [-{n}, {n})") from None


def softmax(x, axis):
    """exp(x) / sum(exp(x)) along `axis`, with the maximum subtracted first for stability."""
    xp = get_array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@register_layer
class SoftmaxLayer(Layer):
    """y = softmax(x) along softmax_param.axis (default 1; negative counts from the end).

    Backward: dx = (dy - sum(dy * y, axis)) * y, from the top data. May run in place.
    """

    type = "Softmax"
    exact_num_bottom = exact_num_top = 1

    def reshape(self, bottom, top):
        self.axis = canonical_axis(self, bottom[0], "softmax_param.axis",
                                   self.param.softmax_param.axis)
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        top[0].data[...] = softmax(bottom[0].data, self.axis)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        y, dy = top[0].data, top[0].diff
        bottom[0].diff[...] = (dy - (dy * y).sum(axis=self.axis, keepdims=True)) * y

    def _dims(self, blob):
        """(channels, inner, positions): the kernels see the blob as (outer, channels, inner)."""
        c = blob.shape[self.axis]
        return c, blob.count_range(self.axis + 1), blob.count // max(c, 1)

    def forward_gpu(self, bottom, top):
        c, inner, n = self._dims(bottom[0])
        kernels.call("softmax.cu", "softmax_forward", n, bottom[0].data, c, inner, top[0].data)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[0]:
            c, inner, n = self._dims(top[0])
            kernels.call("softmax.cu", "softmax_backward", n, top[0].data, top[0].diff, c, inner,
                         bottom[0].diff)
