"""Tile: repeat the input along one axis; and canonical_axis, the axis check shared by layers."""
from ..layer import Layer, register_layer


def canonical_axis(layer, blob, axis, field, allow_end=False):
    """axis made non-negative for `blob` (Caffe's CanonicalAxisIndex); ConfigError naming
    `field` when it is out of range. allow_end also accepts axis == num_axes."""
    n = blob.num_axes
    hi = n + 1 if allow_end else n
    if not -n <= axis < hi:
        raise layer.error(field, f"axis {axis} is out of range for the {n}-D input {blob.shape}; "
                                 f"give an axis in [-{n}, {hi})")
    return axis + n if axis < 0 else axis


@register_layer
class TileLayer(Layer):
    """Copies the input `tiles` times along `axis`: shape[axis] becomes shape[axis] * tiles,
    the whole block of axes from `axis` on repeated (numpy's tile). Reads tile_param.axis
    (default 1) and tile_param.tiles (required, > 0). Backward sums the copies.
    """

    type = "Tile"
    exact_num_bottom = exact_num_top = 1

    def layer_setup(self, bottom, top):
        p = self.param.tile_param
        if not p.HasField("tiles") or p.tiles < 1:
            raise self.error("tile_param.tiles", f"found {p.tiles if p.HasField('tiles') else 'none'}"
                                                 ", expected a number of copies >= 1")
        self.tiles = p.tiles

    def reshape(self, bottom, top):
        self.axis = canonical_axis(self, bottom[0], self.param.tile_param.axis, "tile_param.axis")
        shape = list(bottom[0].shape)
        shape[self.axis] *= self.tiles
        top[0].reshape(shape)
        self.outer = bottom[0].count_range(0, self.axis)
        self.inner = bottom[0].count_range(self.axis)

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.outer, 1, self.inner)
        top[0].data.reshape(self.outer, self.tiles, self.inner)[...] = x

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            dy = top[0].diff.reshape(self.outer, self.tiles, self.inner)
            bottom[0].diff[...] = dy.sum(axis=1).reshape(bottom[0].shape)
