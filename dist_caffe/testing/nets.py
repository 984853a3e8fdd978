"""Run published train_val nets without their databases: Data layers become Input layers."""
from ..errors import ConfigError
from ..proto import caffe_pb2

DATA_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData", "MemoryData")


def _batch_size(layer):
    for field in ("data_param", "image_data_param", "hdf5_data_param", "window_data_param",
                  "memory_data_param"):
        if layer.HasField(field):
            return getattr(layer, field).batch_size
    return 1


def swap_data_for_input(net_param, image_shape=None, shapes=None, batch=None):
    """A copy of net_param with each data layer replaced by an Input layer of the same tops.

    The data top gets (batch, *image_shape), where image_shape is (C, H, W) of the stored
    images; a `transform_param.crop_size` replaces H and W. The second top (labels) gets
    (batch,). `shapes` ({top name: shape}) overrides either; `batch` overrides the batch size.
    """
    shapes = dict(shapes or {})
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net_param)
    del out.layer[:]
    for layer in net_param.layer:
        if layer.type not in DATA_TYPES:
            out.layer.add().CopyFrom(layer)
            continue
        new = out.layer.add()
        new.name, new.type = layer.name, "Input"
        new.top.extend(layer.top)
        new.include.extend(layer.include)
        new.exclude.extend(layer.exclude)
        n = batch or _batch_size(layer)
        for i, top in enumerate(layer.top):
            if top in shapes:
                shape = shapes[top]
            elif i == 0:
                if image_shape is None:
                    raise ConfigError(f"swap_data_for_input: layer '{layer.name}' ({layer.type}): "
                                      f"pass image_shape=(C, H, W) or shapes={{'{top}': ...}}")
                c, h, w = image_shape
                crop = layer.transform_param.crop_size
                shape = (n, c, crop or h, crop or w)
            else:
                shape = (n,)
            new.input_param.shape.add().dim.extend(shape)
    return out
