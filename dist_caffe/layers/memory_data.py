"""MemoryData: batches served from arrays handed over from Python."""
import numpy as np

from ..errors import ConfigError, DataError
from ..layer import Layer, register_layer


@register_layer
class MemoryDataLayer(Layer):
    """Tops data (batch_size, channels, height, width) and labels (batch_size,) cut in turn
    from arrays given with `set_input_arrays(data, labels)` (pycaffe's net.set_input_arrays),
    wrapping around at the end. Reads memory_data_param.batch_size, channels, height, width.
    The arrays are copied; their first axis must be a multiple of batch_size.
    """

    type = "MemoryData"
    exact_num_bottom, exact_num_top = 0, 2

    def layer_setup(self, bottom, top):
        p = self.param.memory_data_param
        for field in ("batch_size", "channels", "height", "width"):
            if getattr(p, field) < 1:
                raise self.error(f"memory_data_param.{field}",
                                 f"found {getattr(p, field)}, expected > 0")
        self.batch_size = p.batch_size
        self.item_shape = (p.channels, p.height, p.width)
        self.data = self.labels = None
        self.pos = 0

    @property
    def channels(self):
        return self.item_shape[0]

    @property
    def height(self):
        return self.item_shape[1]

    @property
    def width(self):
        return self.item_shape[2]

    def reshape(self, bottom, top):
        top[0].reshape((self.batch_size,) + self.item_shape)
        top[1].reshape((self.batch_size,))

    def set_input_arrays(self, data, labels):
        """Serve batches from data (n, C, H, W) and labels (n,) or (n, 1, 1, 1), n a multiple of
        batch_size; the next forward starts at item 0."""
        data, labels = np.asarray(data), np.asarray(labels)
        where = f"layer '{self.name}' (type {self.type}): set_input_arrays"
        if self.param.HasField("transform_param"):
            raise ConfigError(f"{where}: the layer has a transform_param, but arrays are served "
                              "as given; transform them first and remove transform_param")
        if data.ndim != 4 or data.shape[1:] != self.item_shape:
            raise ConfigError(f"{where}: data must be (n, {', '.join(map(str, self.item_shape))})"
                              f" as memory_data_param says, found {data.shape}")
        if labels.ndim == 0 or labels.size != len(labels):
            raise ConfigError(f"{where}: labels must be (n,) or (n, 1, 1, 1), found {labels.shape}")
        if len(labels) != len(data):
            raise ConfigError(f"{where}: data and labels must have the same first dimension "
                              f"({len(data)} vs {len(labels)})")
        if len(data) == 0 or len(data) % self.batch_size:
            raise ConfigError(f"{where}: the first dimension ({len(data)}) must be a non-zero "
                              f"multiple of batch_size {self.batch_size}")
        self.data = np.array(data, dtype=self.dtype)
        self.labels = np.array(labels, dtype=self.dtype).reshape(-1)
        self.pos = 0

    reset = set_input_arrays

    def set_batch_size(self, batch_size):
        """Caffe's MemoryDataLayer::set_batch_size: change it between passes."""
        if self.data is not None and len(self.data) % batch_size:
            raise ConfigError(f"layer '{self.name}': batch_size {batch_size} does not divide the "
                              f"{len(self.data)} items set with set_input_arrays")
        self.batch_size = int(batch_size)

    def forward(self, bottom, top):
        if self.data is None:
            raise DataError(f"layer '{self.name}' (type {self.type}) has no data: call "
                            "net.set_input_arrays(data, labels) (or this layer's "
                            "set_input_arrays) before forward")
        batch = slice(self.pos, self.pos + self.batch_size)
        top[0].data = self.data[batch]
        top[1].data = self.labels[batch]
        self.pos = (self.pos + self.batch_size) % len(self.data)
