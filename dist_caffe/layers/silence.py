"""Silence: swallows blobs nobody reads, so they are not reported as net outputs."""
from ..layer import Layer, register_layer


@register_layer
class SilenceLayer(Layer):
    """At least one bottom, no tops; forward does nothing, backward writes zero diffs to the
    bottoms that ask for one. Reads no layer-specific params.
    """

    type = "Silence"
    min_bottom, exact_num_top = 1, 0

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        for blob, down in zip(bottom, propagate_down):
            if down:
                blob.diff[...] = 0
