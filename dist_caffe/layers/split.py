"""Split: one bottom feeding several readers (the net inserts it where a top is read twice)."""
from ..layer import Layer, register_layer


@register_layer
class SplitLayer(Layer):
    """Every top shares the bottom's data (no copy); backward sums the top diffs into the
    bottom diff. Not in place. Reads no layer-specific params.
    """

    type = "Split"
    exact_num_bottom, min_top = 1, 1

    def reshape(self, bottom, top):
        for i, blob in enumerate(top):
            if blob is bottom[0]:
                raise self.error("top", f"top {i} is the bottom blob; Split cannot run in place")
            blob.reshape_like(bottom[0])

    def forward(self, bottom, top):
        for blob in top:
            blob.share_data(bottom[0])

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        total = top[0].diff.copy()
        for blob in top[1:]:
            total += blob.diff
        bottom[0].diff[...] = total
