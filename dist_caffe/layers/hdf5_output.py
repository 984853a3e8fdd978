"""HDF5Output: write what reaches it to an HDF5 file."""
from .. import backend
from ..errors import ConfigError
from ..layer import Layer, register_layer


@register_layer
class HDF5OutputLayer(Layer):
    """Writes bottom[0] to dataset "data" and bottom[1] to dataset "label" of
    hdf5_output_param.file_name (created, or truncated, at set-up). Every forward appends its
    batch along the first axis (Caffe can write only one batch per file). No tops; passes no
    gradient (writes zeros where asked). `close()` flushes and closes the file.
    """

    type = "HDF5Output"
    exact_num_bottom, exact_num_top = 2, 0
    DATASETS = ("data", "label")

    def layer_setup(self, bottom, top):
        import h5py
        name = self.param.hdf5_output_param.file_name
        if not name:
            raise self.error("hdf5_output_param.file_name", "no file name given")
        try:
            self.file = h5py.File(name, "w")
        except OSError as e:
            raise ConfigError(f"layer '{self.name}' (type {self.type}): hdf5_output_param."
                              f"file_name {name}: cannot create the file ({e})") from None

    def reshape(self, bottom, top):
        if bottom[0].shape[:1] != bottom[1].shape[:1]:
            raise self.error("bottom", f"data {bottom[0].shape} and label {bottom[1].shape} need "
                                       "the same first axis")

    def forward(self, bottom, top):
        for name, blob in zip(self.DATASETS, bottom):
            values = backend.to_cpu(blob.data)
            values = values.reshape((1,) + values.shape) if values.ndim == 0 else values
            if name not in self.file:
                self.file.create_dataset(name, data=values, maxshape=(None,) + values.shape[1:],
                                         chunks=True)
                continue
            ds = self.file[name]
            if ds.shape[1:] != values.shape[1:]:
                raise self.error("bottom", f"'{name}' changed shape from {ds.shape[1:]} to "
                                           f"{values.shape[1:]} per item; one file holds one shape")
            n = ds.shape[0]
            ds.resize(n + values.shape[0], axis=0)
            ds[n:] = values
        self.file.flush()

    def backward(self, top, propagate_down, bottom):
        for down, blob in zip(propagate_down, bottom):
            if down:
                blob.diff[...] = 0

    def close(self):
        f = getattr(self, "file", None)
        if f is not None and f.id.valid:
            f.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: h5py may already be gone
            pass

