"""Filter: keep the items whose selector value is non-zero."""
from ..backend import get_array_module
from ..layer import Layer, register_layer


@register_layer
class FilterLayer(Layer):
    """bottom[0..K-1] are filtered along their first axis by the last bottom, the selector
    (shape (N,) or (N, 1, ...)): top[k] = bottom[k][selector != 0]. K tops, so the number of
    items can change every pass (set up once with all N items, as Caffe does).

    Backward copies each top's gradient back to the kept items and zeroes the others; the
    selector gets no gradient.
    """

    type = "Filter"
    min_bottom, min_top = 2, 1

    def allow_force_backward(self, bottom_index):
        return bottom_index != self._selector_index

    def layer_setup(self, bottom, top):
        if len(top) != len(bottom) - 1:
            raise self.error("top", f"needs one top per filtered bottom ({len(bottom) - 1}: every "
                                    f"bottom but the last, the selector), found {len(top)}")
        self._selector_index = len(bottom) - 1
        self.first_reshape = True

    def reshape(self, bottom, top):
        sel = bottom[-1]
        if sel.num_axes < 1 or any(d != 1 for d in sel.shape[1:]):
            raise self.error("bottom", f"the selector (last bottom) must be (N,) or (N, 1, ...), "
                                       f"found {sel.shape}")
        for i, b in enumerate(bottom[:-1]):
            if b.num_axes < 1 or b.shape[0] != sel.shape[0]:
                raise self.error("bottom", f"bottom[{i}] {b.shape} and the selector {sel.shape} "
                                           "need the same first axis")
        xp = get_array_module(sel.data)
        self.indices = xp.flatnonzero(sel.data.reshape(-1))
        n = sel.shape[0] if self.first_reshape else int(self.indices.size)
        self.first_reshape = False
        for t, b in zip(top, bottom):
            t.reshape((n,) + b.shape[1:])

    def forward(self, bottom, top):
        for t, b in zip(top, bottom):
            t.data[...] = b.data[self.indices]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[-1]:
            raise self.error("propagate_down", "cannot backpropagate to the selector (last bottom); "
                                               "set propagate_down: false for it")
        for t, b, down in zip(top, bottom, propagate_down):
            if down:
                b.diff[...] = 0
                b.diff[self.indices] = t.diff
