"""Reshape: give the bottom's values a new shape."""
from ..layer import Layer, register_layer


@register_layer
class ReshapeLayer(Layer):
    """Top = the bottom with axes [axis, axis + num_axes) replaced by reshape_param.shape.

    In `shape`, 0 copies the bottom's dimension at that position and one -1 is inferred from
    the count.  Reads reshape_param: shape, axis (0; negative counts from the end, -1 = after
    the last axis), num_axes (-1: to the end).  The top shares the bottom's data and diff (no
    copy, as Caffe), so forward and backward have nothing to do; not in place.
    """
    type = "Reshape"
    in_place = False
    exact_num_bottom = exact_num_top = 1

    def layer_setup(self, bottom, top):
        dims = list(self.param.reshape_param.shape.dim)
        if dims.count(-1) > 1 or any(d < -1 for d in dims):
            raise self.error("reshape_param.shape", f"found {dims}, expected dimensions >= 0 "
                                                    "with at most one -1 (inferred)")

    def reshape(self, bottom, top):
        p, x = self.param.reshape_param, bottom[0]
        n = x.num_axes
        start = p.axis if p.axis >= 0 else n + p.axis + 1
        if not 0 <= start <= n:
            raise self.error("reshape_param.axis", f"found {p.axis}, out of range for the "
                                                   f"{n}-D bottom {x.shape}")
        if p.num_axes < -1:
            raise self.error("reshape_param.num_axes", f"found {p.num_axes}, expected >= 0, or "
                                                       "-1 for all axes from `axis` to the end")
        end = n if p.num_axes == -1 else start + p.num_axes
        if end > n:
            raise self.error("reshape_param.num_axes", f"axis {start} + num_axes {p.num_axes} runs "
                                                       f"past the {n} axes of the bottom {x.shape}")
        new = list(p.shape.dim)
        for i, d in enumerate(new):
            if d == 0:
                if start + i >= n:
                    raise self.error("reshape_param.shape", f"dim {i} is 0 (copy) but the bottom "
                                                            f"{x.shape} has no axis {start + i}")
                new[i] = x.shape[start + i]
        shape = list(x.shape[:start]) + new + list(x.shape[end:])
        if -1 in new:
            known = 1
            for d in shape:
                known *= d if d != -1 else 1
            if known == 0 or x.count % known:
                raise self.error("reshape_param.shape",
                                 f"cannot infer the -1 in {list(p.shape.dim)}: the bottom count "
                                 f"{x.count} ({x.shape}) is not divisible by the product of the "
                                 f"other dimensions ({known})")
            shape[shape.index(-1)] = x.count // known
        count = 1
        for d in shape:
            count *= d
        if count != x.count:
            raise self.error("reshape_param.shape",
                             f"the new shape {tuple(shape)} holds {count} values but the bottom "
                             f"{x.shape} holds {x.count}; the counts must match")
        top[0].reshape(shape)
        top[0].share_data(x)
        top[0].share_diff(x)

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        pass
