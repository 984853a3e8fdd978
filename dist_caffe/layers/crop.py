"""Crop: cut bottom[0] to the shape of bottom[1] from `axis` on, at given offsets."""
from ..layer import Layer, register_layer
from .tile import canonical_axis


@register_layer
class CropLayer(Layer):
    """top = bottom[0][..., o_a : o_a + s_a, ...] for every axis a >= crop_param.axis (default
    2), with s_a = bottom[1].shape[a]; earlier axes are kept whole. crop_param.offset gives
    no offsets (all 0), one for every cropped axis, or one per cropped axis. bottom[1] only
    gives the shape (it gets zero gradient); bottom[0]'s gradient is the top's, zero-padded.
    """

    type = "Crop"
    exact_num_bottom, exact_num_top = 2, 1

    def reshape(self, bottom, top):
        p, a, b = self.param.crop_param, bottom[0], bottom[1]
        if a.num_axes != b.num_axes:
            raise self.error("bottom", f"bottom[0] {a.shape} and bottom[1] {b.shape} need the same "
                                       "number of axes")
        axis = canonical_axis(self, a, p.axis, "crop_param.axis")
        n = a.num_axes - axis
        offsets = list(p.offset)
        if len(offsets) == 0:
            offsets = [0] * n
        elif len(offsets) == 1:
            offsets = offsets * n
        elif len(offsets) != n:
            raise self.error("crop_param.offset", f"found {len(offsets)} offsets, expected 0, 1 or "
                                                  f"{n} (one per axis from axis {axis} of {a.shape})")
        shape, self.slices = list(a.shape[:axis]), [slice(None)] * axis
        for k, (o, size) in enumerate(zip(offsets, b.shape[axis:])):
            if o + size > a.shape[axis + k]:
                raise self.error("crop_param.offset", f"offset {o} + crop size {size} exceeds "
                                                      f"{a.shape[axis + k]} on axis {axis + k} of "
                                                      f"bottom[0] {a.shape}")
            shape.append(size)
            self.slices.append(slice(o, o + size))
        self.slices = tuple(self.slices)
        top[0].reshape(shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data[self.slices]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = 0
            bottom[0].diff[self.slices] = top[0].diff
        if propagate_down[1]:
            bottom[1].diff[...] = 0
