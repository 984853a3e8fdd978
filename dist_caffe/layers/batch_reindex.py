"""BatchReindex: pick (and repeat or reorder) items of a batch by index."""
from ..layer import Layer, register_layer
from .embed import read_indices, scatter_add_rows


@register_layer
class BatchReindexLayer(Layer):
    """top[i] = bottom[0][bottom[1][i]]: bottom[1] is a 1-D blob of item indices into
    bottom[0]'s first axis. Backward sums each top item's gradient into the item it came
    from (items never picked get 0); the indices get none.
    """

    type = "BatchReindex"
    exact_num_bottom, exact_num_top = 2, 1

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1

    def reshape(self, bottom, top):
        if bottom[1].num_axes != 1:
            raise self.error("bottom", f"bottom[1] holds the indices and must be 1-D, found shape "
                                       f"{bottom[1].shape}")
        if bottom[0].num_axes < 1:
            raise self.error("bottom", "bottom[0] must have a batch axis")
        top[0].reshape(bottom[1].shape[:1] + bottom[0].shape[1:])

    def forward(self, bottom, top):
        self.idx = read_indices(self, bottom[1].data, bottom[0].shape[0], "index")
        top[0].data[...] = bottom[0].data[self.idx]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("propagate_down", "cannot backpropagate to the indices (bottom[1]); "
                                               "set propagate_down: false for it")
        if propagate_down[0]:
            diff = bottom[0].diff
            diff[...] = 0
            scatter_add_rows(diff, self.idx, top[0].diff)
