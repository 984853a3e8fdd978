"""Input: tops whose data the caller assigns (net.blobs['data'].data[...] = ...)."""
from ..layer import Layer, register_layer


@register_layer
class InputLayer(Layer):
    """No bottoms; shapes the tops from input_param.shape: none (the caller reshapes), one for
    every top, or one per top. Forward and backward do nothing; reshape keeps whatever shape
    the caller has given the tops since set-up.
    """

    type = "Input"
    exact_num_bottom, min_top = 0, 1

    def layer_setup(self, bottom, top):
        shapes = self.param.input_param.shape
        if len(shapes) not in (0, 1, len(top)):
            raise self.error("input_param.shape", f"{len(shapes)} shapes for {len(top)} tops; give "
                                                  "one shape for all tops, one per top, or none")
        if not shapes:
            return
        for i, blob in enumerate(top):
            dims = tuple(shapes[0 if len(shapes) == 1 else i].dim)
            if any(d < 0 for d in dims):
                raise self.error("input_param.shape", f"shape {dims} of top {i} has a negative "
                                                      "dim; every dim must be >= 0")
            blob.reshape(dims)

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        pass
