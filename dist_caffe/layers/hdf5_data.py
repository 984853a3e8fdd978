"""HDF5Data: batches read from HDF5 files listed in a text file."""
import os

import numpy as np

from ..errors import ConfigError, DataError
from ..layer import TRAIN, Layer, register_layer


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise ConfigError("HDF5 layers need h5py: pip install h5py") from None
    return h5py


@register_layer
class HDF5DataLayer(Layer):
    """Each top is the HDF5 dataset of the same name (the top's name), batch_size rows at a
    time: top shape (batch_size, *dataset.shape[1:]). hdf5_data_param.source is a text file
    naming one HDF5 file per line; files are read whole, one after another, wrapping around.
    With hdf5_data_param.shuffle the file order is shuffled on every wrap and the rows of
    each file on every pass over it (dist_caffe's seeded generator). In TRAIN under data
    parallelism, replica r of R takes rows r, r+R, ... (Caffe's multi-GPU Skip).
    """

    type = "HDF5Data"
    exact_num_bottom, min_top = 0, 1

    def layer_setup(self, bottom, top):
        p = self.param.hdf5_data_param
        if p.batch_size < 1:
            raise self.error("hdf5_data_param.batch_size", f"found {p.batch_size}, expected > 0")
        if len(self.param.top) != len(top):
            raise self.error("top", "every top needs a name: the dataset it reads")
        self.batch_size, self.shuffle = p.batch_size, p.shuffle
        self.files = self._read_source(p.source)
        self.file_order = np.arange(len(self.files))
        if self.shuffle:
            self.rng.shuffle(self.file_order)
        self.current_file, self.offset = 0, 0
        self._load(self.files[self.file_order[0]])

    def _read_source(self, source):
        if not source:
            raise self.error("hdf5_data_param.source", "no source: give a text file listing one "
                                                       "HDF5 file per line")
        try:
            with open(source) as f:
                names = [line.strip() for line in f if line.strip()]
        except OSError as e:
            raise DataError(f"layer '{self.name}' (type {self.type}): hdf5_data_param.source "
                            f"{source}: cannot read the file list ({e.strerror})") from None
        if not names:
            raise DataError(f"layer '{self.name}' (type {self.type}): {source} lists no HDF5 "
                            "files; write one path per line")
        # As in Caffe, paths are taken as written; one that is not found from the working
        # directory is also looked for beside the list file.
        base = os.path.dirname(os.path.abspath(source))
        resolved = []
        for name in names:
            beside = os.path.join(base, name)
            found_beside = not os.path.exists(name) and os.path.exists(beside)
            resolved.append(beside if found_beside and not os.path.isabs(name) else name)
        return resolved

    def _load(self, path):
        h5py = _h5py()
        where = f"layer '{self.name}' (type {self.type}): {path}"
        try:
            with h5py.File(path, "r") as f:
                arrays = []
                for name in self.param.top:
                    if name not in f:
                        raise DataError(f"{where}: no dataset '{name}' for top '{name}' (datasets: "
                                        f"{', '.join(sorted(f.keys()))}); name each top after a "
                                        "dataset")
                    if f[name].ndim < 1:
                        raise DataError(f"{where}: dataset '{name}' is a scalar; it needs rows")
                    arrays.append(np.asarray(f[name][()], dtype=self.dtype))
        except OSError as e:
            raise DataError(f"{where}: cannot read the HDF5 file ({e})") from None
        rows = {len(a) for a in arrays}
        if len(rows) != 1 or 0 in rows:
            raise DataError(f"{where}: the datasets {list(self.param.top)} need the same non-zero "
                            f"number of rows, found {[len(a) for a in arrays]}")
        self.arrays, self.row = arrays, 0
        self.row_order = np.arange(len(arrays[0]))
        if self.shuffle:
            self.rng.shuffle(self.row_order)

    def _next(self):
        """Caffe's Next(): advance one row, moving to the next file (or reshuffling) at the end."""
        self.row += 1
        if self.row == len(self.row_order):
            self._flush()  # rows picked so far index the arrays about to be replaced
            if len(self.files) > 1:
                self.current_file += 1
                if self.current_file == len(self.files):
                    self.current_file = 0
                    if self.shuffle:
                        self.rng.shuffle(self.file_order)
                self._load(self.files[self.file_order[self.current_file]])
            else:
                self.row = 0
                if self.shuffle:
                    self.rng.shuffle(self.row_order)
        self.offset += 1

    def _skip(self):
        from ..parallel import world
        comm = world()
        return self.phase == TRAIN and comm.size > 1 and self.offset % comm.size != comm.rank

    def reshape(self, bottom, top):
        for t, a in zip(top, self.arrays):
            t.reshape((self.batch_size,) + a.shape[1:])

    def forward(self, bottom, top):
        # Rows are gathered per run within one file: one fancy-index copy per file per batch.
        self._parts, self._rows = [[] for _ in top], []
        for _ in range(self.batch_size):
            while self._skip():
                self._next()
            self._rows.append(self.row_order[self.row])
            self._next()
        self._flush()
        for t, parts in zip(top, self._parts):
            t.data = np.concatenate(parts).reshape(t.shape)

    def _flush(self):
        rows = getattr(self, "_rows", None)
        if rows:
            for dest, a in zip(self._parts, self.arrays):
                dest.append(a[np.asarray(rows)])
            rows.clear()
