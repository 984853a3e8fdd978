"""Concat: join bottoms along one axis (and the axis helpers Slice shares)."""
from ..layer import Layer, register_layer
from .bias import axis_index


def legacy_axis(layer, blob, p, field, legacy):
    """The axis from p.axis (negative counts from the end) or the legacy non-negative p.<legacy>."""
    if p.HasField("axis") and p.HasField(legacy):
        raise layer.error(f"{field}.axis", f"both axis and {legacy} are set; give only axis "
                                           f"({legacy} is its legacy name)")
    if p.HasField(legacy):
        axis = getattr(p, legacy)
        if axis >= blob.num_axes:
            raise layer.error(f"{field}.{legacy}", f"found {axis}, expected an axis of the "
                                                   f"{blob.num_axes}-D bottom {blob.shape}")
        return axis
    return axis_index(layer, blob, p.axis, f"{field}.axis")


def along(axis, start, stop):
    """Index of [start, stop) on `axis`, all of every axis before it."""
    return (slice(None),) * axis + (slice(start, stop),)


@register_layer
class ConcatLayer(Layer):
    """Top = the bottoms joined along `axis`; their shapes must agree on every other axis.

    Reads concat_param.axis (default 1, negative counts from the end) or the legacy concat_dim.
    """
    type = "Concat"
    min_bottom, exact_num_top = 1, 1

    def reshape(self, bottom, top):
        first = bottom[0]
        self.axis = legacy_axis(self, first, self.param.concat_param, "concat_param", "concat_dim")
        shape = list(first.shape)
        for i, b in enumerate(bottom[1:], 1):
            if b.num_axes != first.num_axes or any(
                    d != e for k, (d, e) in enumerate(zip(b.shape, first.shape)) if k != self.axis):
                raise self.error("bottom", f"bottom[{i}] has shape {b.shape} and bottom[0] has "
                                           f"{first.shape}: Concat on axis {self.axis} needs the "
                                           "same shape on every other axis")
            shape[self.axis] += b.shape[self.axis]
        top[0].reshape(shape)

    def _spans(self, bottom):
        start = 0
        for b in bottom:
            yield b, along(self.axis, start, start + b.shape[self.axis])
            start += b.shape[self.axis]

    def forward(self, bottom, top):
        y = top[0].data
        for b, index in self._spans(bottom):
            y[index] = b.data

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        for (b, index), down in zip(self._spans(bottom), propagate_down):
            if down:
                b.diff[...] = dy[index]
