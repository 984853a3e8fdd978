"""Flatten: merge a range of axes into one."""
from ..layer import Layer, register_layer
from .bias import axis_index


@register_layer
class FlattenLayer(Layer):
    """Top = the bottom with axes axis..end_axis merged into one, e.g. (N, C, H, W) -> (N, C*H*W).

    Reads flatten_param: axis (1), end_axis (-1).  The top shares the bottom's data and diff
    (no copy, as Caffe), so forward and backward have nothing to do; not in place.
    """
    type = "Flatten"
    in_place = False
    exact_num_bottom = exact_num_top = 1

    def reshape(self, bottom, top):
        p, x = self.param.flatten_param, bottom[0]
        start = axis_index(self, x, p.axis, "flatten_param.axis")
        end = axis_index(self, x, p.end_axis, "flatten_param.end_axis")
        if end < start - 1:
            raise self.error("flatten_param.end_axis", f"found end_axis {p.end_axis} (axis {end}) "
                                                       f"before axis {p.axis} (axis {start})")
        top[0].reshape(x.shape[:start] + (x.count_range(start, end + 1),) + x.shape[end + 1:])
        top[0].share_data(x)
        top[0].share_diff(x)

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        pass
