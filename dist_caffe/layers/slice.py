"""Slice: cut a bottom into several tops along one axis."""
from ..layer import Layer, register_layer
from .concat import along, legacy_axis


@register_layer
class SliceLayer(Layer):
    """Tops = consecutive pieces of the bottom along `axis`.

    Reads slice_param: axis (1; or the legacy slice_dim), slice_point (increasing, one fewer
    than the tops: piece k is [point[k-1], point[k])); without slice_point the axis is split
    into equal pieces, one per top.
    """
    type = "Slice"
    exact_num_bottom, min_top = 1, 1

    def reshape(self, bottom, top):
        p, x = self.param.slice_param, bottom[0]
        self.axis = legacy_axis(self, x, p, "slice_param", "slice_dim")
        dim, n = x.shape[self.axis], len(top)
        if p.slice_point:
            points = list(p.slice_point)
            if len(points) != n - 1:
                raise self.error("slice_param.slice_point",
                                 f"found {len(points)} points for {n} tops; give one fewer "
                                 "slice_point than tops")
            if any(b <= a for a, b in zip([0] + points, points)) or points[-1] > dim:
                raise self.error("slice_param.slice_point",
                                 f"found {points}, expected increasing values in 1..{dim} "
                                 f"(axis {self.axis} of the bottom {x.shape})")
        else:
            if dim % n:
                raise self.error("slice_param.slice_point",
                                 f"none given, so axis {self.axis} of the bottom {x.shape} is cut "
                                 f"into {n} equal pieces, but {dim} is not divisible by {n}; "
                                 "give slice_point or change the number of tops")
            points = [dim // n * k for k in range(1, n)]
        self.bounds = list(zip([0] + points, points + [dim]))
        for t, (start, stop) in zip(top, self.bounds):
            shape = list(x.shape)
            shape[self.axis] = stop - start
            t.reshape(shape)

    def forward(self, bottom, top):
        x = bottom[0].data
        for t, (start, stop) in zip(top, self.bounds):
            t.data[...] = x[along(self.axis, start, stop)]

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dx = bottom[0].diff
        for t, (start, stop) in zip(top, self.bounds):
            dx[along(self.axis, start, stop)] = t.diff
