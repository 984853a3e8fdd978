"""DummyData: tops filled by fillers, for benchmarks and tests without a data source."""
from ..filler import fill
from ..layer import Layer, register_layer
from ..proto import caffe_pb2

LEGACY = ("num", "channels", "height", "width")


def _pick(values, i):
    """The i-th value of a per-top list, or its only value."""
    return values[i] if len(values) > 1 else values[0]


@register_layer
class DummyDataLayer(Layer):
    """No bottoms; each top gets dummy_data_param.shape (one for all or one per top) or the
    legacy num/channels/height/width lists (each one value or one per top), and is filled by
    dummy_data_param.data_filler (none: constant 0; one for all tops; or one per top).

    As Caffe: tops with a constant filler are filled once at set-up, the others on every
    forward pass.
    """

    type = "DummyData"
    exact_num_bottom, min_top = 0, 1

    def layer_setup(self, bottom, top):
        p, n = self.param.dummy_data_param, len(top)
        if len(p.data_filler) not in (0, 1, n):
            raise self.error("dummy_data_param.data_filler", f"{len(p.data_filler)} fillers for "
                                                             f"{n} tops; give none, one, or one per top")
        fillers = list(p.data_filler) or [caffe_pb2.FillerParameter(type="constant", value=0)]
        self.fillers = [_pick(fillers, i) for i in range(n)]
        for i, (blob, shape) in enumerate(zip(top, self._shapes(p, n))):
            if any(d < 0 for d in shape):
                raise self.error("dummy_data_param.shape", f"shape {shape} of top {i} has a "
                                                           "negative dim; every dim must be >= 0")
            blob.reshape(shape)
            if self.fillers[i].type == "constant":
                fill(blob, self.fillers[i])

    def _shapes(self, p, n):
        if any(len(getattr(p, f)) for f in LEGACY):
            if len(p.shape):
                raise self.error("dummy_data_param", "both shape and the legacy num/channels/"
                                                     "height/width are given; use shape only")
            for f in LEGACY:
                if len(getattr(p, f)) not in (1, n):
                    raise self.error(f"dummy_data_param.{f}", f"{len(getattr(p, f))} values for "
                                                              f"{n} tops; give one, or one per top")
            return [tuple(_pick(getattr(p, f), i) for f in LEGACY) for i in range(n)]
        if len(p.shape) not in (1, n):
            raise self.error("dummy_data_param.shape", f"{len(p.shape)} shapes for {n} tops; give "
                                                       "one shape for all tops or one per top")
        return [tuple(_pick(p.shape, i).dim) for i in range(n)]

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        for blob, filler in zip(top, self.fillers):
            if filler.type != "constant":
                fill(blob, filler)

    def backward(self, top, propagate_down, bottom):
        pass
