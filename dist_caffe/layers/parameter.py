"""Parameter: a learnable blob presented as a top (no bottoms)."""
from ..layer import Layer, register_layer


@register_layer
class ParameterLayer(Layer):
    """top[0] is blobs[0], of shape parameter_param.shape (zero-filled, as in Caffe; load it
    from a caffemodel or set it). The top shares the blob's data; backward adds the top's
    gradient to the blob's, so iter_size passes and shared params accumulate.
    """

    type = "Parameter"
    exact_num_bottom, exact_num_top = 0, 1

    def layer_setup(self, bottom, top):
        self.blobs = [self.new_blob(tuple(self.param.parameter_param.shape.dim))]

    def reshape(self, bottom, top):
        # Re-shared every pass: the net moves blobs[0] into its flat parameter buffer after set-up.
        top[0].reshape(self.blobs[0].shape)
        top[0].share_data(self.blobs[0])

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        if self.param_propagate_down[0]:
            self.blobs[0].diff[...] += top[0].diff
