"""Bias: add a learned or given blob broadcast along some axes; axis helpers other layers share."""
from ..filler import fill
from ..layer import Layer, register_layer


def axis_index(layer, blob, axis, field):
    """blob.canonical_axis_index(axis), or a ConfigError naming `field`."""
    try:
        return blob.canonical_axis_index(axis)
    except IndexError:
        n = blob.num_axes
        raise layer.error(field, f"found {axis}, expected an axis of the bottom of shape "
                                 f"{blob.shape} (from {-n} to {n - 1})") from None


def param_shape(layer, blob, axis, num_axes, field):
    """Shape of the blob that covers `num_axes` axes of `blob` from `axis` (-1: to the end)."""
    axis = axis_index(layer, blob, axis, f"{field}.axis")
    if num_axes < -1:
        raise layer.error(f"{field}.num_axes", f"found {num_axes}, expected >= 0, or -1 for all "
                                               "axes from `axis` to the end")
    end = blob.num_axes if num_axes == -1 else axis + num_axes
    if end > blob.num_axes:
        raise layer.error(f"{field}.num_axes", f"axis {axis} + num_axes {num_axes} runs past the "
                                               f"{blob.num_axes} axes of the bottom {blob.shape}")
    return blob.shape[axis:end]


def broadcast_dims(layer, blob, operand, axis, field, what):
    """(outer, dim, inner): `operand` spans blob's axes [axis, axis + operand.num_axes).

    As in Caffe, a scalar operand (0 axes) ignores `axis`.  `what` names the operand
    ("bottom[1]", "blobs[0]") in the error when the shapes disagree.
    """
    axis = 0 if operand.num_axes == 0 else axis_index(layer, blob, axis, f"{field}.axis")
    span = blob.shape[axis:axis + operand.num_axes]
    if span != operand.shape:
        raise layer.error(what, f"shape {operand.shape} does not match bottom[0] {blob.shape} at "
                                f"axes {axis}..{axis + operand.num_axes - 1} {span}; check "
                                f"{field}.axis / num_axes, or the shape of {what}")
    return blob.count_range(0, axis), operand.count, blob.count_range(axis + operand.num_axes)


@register_layer
class BiasLayer(Layer):
    """y = x + b, b broadcast over x's axes [axis, axis + b.num_axes).

    b is bottom[1] when given, else a learned blob of shape x.shape[axis:axis+num_axes]
    (num_axes -1: to the end) filled by `filler` (default constant 0).
    Reads bias_param: axis (1), num_axes (1), filler.
    """
    type = "Bias"
    min_bottom, max_bottom, exact_num_top = 1, 2, 1

    def layer_setup(self, bottom, top):
        p = self.param.bias_param
        if len(bottom) == 1 and not self.blobs:
            shape = param_shape(self, bottom[0], p.axis, p.num_axes, "bias_param")
            self.blobs = [fill(self.new_blob(shape), p.filler)]

    def reshape(self, bottom, top):
        given = len(bottom) > 1
        self.dims = broadcast_dims(self, bottom[0], bottom[1] if given else self.blobs[0],
                                   self.param.bias_param.axis, "bias_param",
                                   "bottom[1]" if given else "blobs[0]")
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        outer, dim, inner = self.dims
        bias = (bottom[1] if len(bottom) > 1 else self.blobs[0]).data
        x = bottom[0].data.reshape(outer, dim, inner)
        top[0].data[...] = (x + bias.reshape(1, dim, 1)).reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        outer, dim, inner = self.dims
        if len(bottom) == 1 and self.param_propagate_down[0]:
            self.blobs[0].diff[...] += dy.reshape(outer, dim, inner).sum(axis=(0, 2)).reshape(
                self.blobs[0].shape)
        elif len(bottom) > 1 and propagate_down[1]:
            bottom[1].diff[...] = dy.reshape(outer, dim, inner).sum(axis=(0, 2)).reshape(
                bottom[1].shape)
        if propagate_down[0] and top[0] is not bottom[0]:
            bottom[0].diff[...] = dy
