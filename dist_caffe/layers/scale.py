"""Scale: multiply by a learned or given blob broadcast along some axes, optionally add a bias."""
from ..filler import fill
from ..layer import Layer, register_layer
from ..proto import caffe_pb2
from .bias import broadcast_dims, param_shape


@register_layer
class ScaleLayer(Layer):
    """y = x * s (+ b), s (and b) broadcast over x's axes [axis, axis + s.num_axes).

    s is bottom[1] when given, else the learned blobs[0] of shape x.shape[axis:axis+num_axes]
    (num_axes -1: to the end) filled by `filler` (default constant 1).  With bias_term, a learned
    bias of s's shape filled by `bias_filler` (default constant 0) is the last blob.
    Reads scale_param: axis (1), num_axes (1), filler, bias_term (false), bias_filler.
    """
    type = "Scale"
    min_bottom, max_bottom, exact_num_top = 1, 2, 1

    def layer_setup(self, bottom, top):
        p = self.param.scale_param
        # Blobs already present (given weights) are kept, as Caffe does.
        if len(bottom) == 1 and not self.blobs:
            filler = p.filler if p.HasField("filler") else \
                caffe_pb2.FillerParameter(type="constant", value=1)
            shape = param_shape(self, bottom[0], p.axis, p.num_axes, "scale_param")
            self.blobs = [fill(self.new_blob(shape), filler)]
        self.bias_term = p.bias_term
        if p.bias_term and len(self.blobs) + len(bottom) < 3:
            num_axes = bottom[1].num_axes if len(bottom) > 1 else p.num_axes
            shape = param_shape(self, bottom[0], p.axis, num_axes, "scale_param")
            self.blobs.append(fill(self.new_blob(shape), p.bias_filler))

    def _scale(self, bottom):
        return bottom[1] if len(bottom) > 1 else self.blobs[0]

    def reshape(self, bottom, top):
        axis, given = self.param.scale_param.axis, len(bottom) > 1
        self.dims = broadcast_dims(self, bottom[0], self._scale(bottom), axis, "scale_param",
                                   "bottom[1]" if given else "blobs[0]")
        if self.bias_term:
            broadcast_dims(self, bottom[0], self.blobs[-1], axis, "scale_param",
                           f"blobs[{len(self.blobs) - 1}] (bias)")
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        outer, dim, inner = self.dims
        x = bottom[0].data.reshape(outer, dim, inner)
        if top[0] is bottom[0]:
            self.x_saved = x.copy()  # in place: backward still needs the input
        y = x * self._scale(bottom).data.reshape(1, dim, 1)
        if self.bias_term:
            y = y + self.blobs[-1].data.reshape(1, dim, 1)
        top[0].data[...] = y.reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        outer, dim, inner = self.dims
        dy = top[0].diff.reshape(outer, dim, inner)
        if self.bias_term and self.param_propagate_down[-1]:
            bias = self.blobs[-1]
            bias.diff[...] += dy.sum(axis=(0, 2)).reshape(bias.shape)
        scale = self._scale(bottom)
        learned = len(bottom) == 1
        if (learned and self.param_propagate_down[0]) or (not learned and propagate_down[1]):
            x = self.x_saved if top[0] is bottom[0] else bottom[0].data.reshape(outer, dim, inner)
            grad = (dy * x).sum(axis=(0, 2)).reshape(scale.shape)
            if learned:
                scale.diff[...] += grad
            else:
                scale.diff[...] = grad
        if propagate_down[0]:
            bottom[0].diff[...] = (dy * scale.data.reshape(1, dim, 1)).reshape(bottom[0].shape)
