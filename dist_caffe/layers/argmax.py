"""ArgMax: the indices (and optionally values) of the top_k largest inputs (forward only)."""
from ..backend import get_array_module
from ..layer import Layer, register_layer
from .tile import canonical_axis


def top_k_indices(v, k):
    """Indices of the k largest values along the last axis, largest first; among equal values
    the larger index comes first (Caffe sorts (value, index) pairs in descending order)."""
    xp = get_array_module(v)
    order = xp.argsort(-v[..., ::-1], axis=-1, kind="stable")[..., :k]
    return v.shape[-1] - 1 - order


@register_layer
class ArgMaxLayer(Layer):
    """Reads argmax_param.top_k (default 1), out_max_val and axis.

    Without `axis`: each item's flattened input (count(1) values) is ranked and the top is
    (N, 1, top_k) with the indices, or (N, 2, top_k) with indices then values when
    out_max_val (padded to at least 3 axes, Caffe's shape). With `axis`: the input shape with
    shape[axis] = top_k, holding indices, or the values when out_max_val. Forward only.
    """

    type = "ArgMax"
    exact_num_bottom = exact_num_top = 1
    has_backward = False

    def layer_setup(self, bottom, top):
        p = self.param.argmax_param
        self.top_k, self.out_max_val, self.has_axis = p.top_k, p.out_max_val, p.HasField("axis")
        if self.top_k < 1:
            raise self.error("argmax_param.top_k", f"found {self.top_k}, expected >= 1")

    def reshape(self, bottom, top):
        b = bottom[0]
        if self.has_axis:
            self.axis = canonical_axis(self, b, self.param.argmax_param.axis, "argmax_param.axis")
            dim = b.shape[self.axis]
            shape = list(b.shape)
            shape[self.axis] = self.top_k
        else:
            dim = b.count_range(1)
            shape = [1] * max(b.num_axes, 3)
            shape[0], shape[1], shape[2] = b.shape[0], 2 if self.out_max_val else 1, self.top_k
        if self.top_k > dim:
            where = f"axis {self.axis}" if self.has_axis else "one item (count from axis 1)"
            raise self.error("argmax_param.top_k", f"top_k {self.top_k} exceeds the {dim} values "
                                                   f"of {where} of input {b.shape}")
        top[0].reshape(shape)

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        if not self.has_axis:
            v = x.reshape(x.shape[0], -1)
            idx = top_k_indices(v, self.top_k)
            out = top[0].data.reshape(x.shape[0], -1, self.top_k)
            out[:, 0, :] = idx
            if self.out_max_val:
                out[:, 1, :] = xp.take_along_axis(v, idx, axis=-1)
            return
        v = xp.moveaxis(x, self.axis, -1)
        idx = top_k_indices(v, self.top_k)
        res = xp.take_along_axis(v, idx, axis=-1) if self.out_max_val else idx
        top[0].data[...] = xp.moveaxis(res, -1, self.axis)
