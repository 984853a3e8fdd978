"""Caffe's HDF5 weight and solver-state files (snapshot_format: HDF5), through h5py.

A net file holds group `data/<layer name>` with one dataset per param blob named by its index
("0", "1", ...; params shared from another layer are left out) and, with snapshot_diff,
`diff/<layer name>` the same way for gradients. A solver-state file holds datasets
`iter` and `current_step`, the string `learned_net`, and group `history` with datasets "0".."N-1"
in Caffe's learnable-param order (`iter` and `current_step` are 1-element arrays, as Caffe's
hdf5_save_int writes them). Files are written to a temp file and renamed.
"""
import logging
import os
import tempfile

import numpy as np

from . import backend
from .errors import ConfigError, DataError
from .proto import caffe_pb2

log = logging.getLogger("dist_caffe.hdf5")


def _h5py():
    import h5py
    return h5py


def _write_atomic(path, fill):
    """Create an HDF5 file beside `path`, let fill(h5file) write it, fsync, then rename."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(fd)
    try:
        with _h5py().File(tmp, "w") as f:
            fill(f)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _open(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such HDF5 file")
    try:
        return _h5py().File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({e})") from None


def write_net_hdf5(net, path, write_diff=False):
    """Write every layer's params as `data/<layer>/<i>` (and `diff/...`), as Caffe's ToHDF5."""
    owned = {(e.layer_name, e.index) for e in net.param_layout}

    def fill(f):
        data = f.create_group("data")
        diff = f.create_group("diff") if write_diff else None
        for layer in net.layers:
            lg = data.create_group(layer.name)
            dg = diff.create_group(layer.name) if write_diff else None
            for j, blob in enumerate(layer.blobs):
                if (layer.name, j) in owned:
                    lg.create_dataset(str(j), data=backend.to_cpu(blob.data))
                if write_diff:
                    dg.create_dataset(str(j), data=backend.to_cpu(blob.diff))
    _write_atomic(path, fill)


def read_net_hdf5(path):
    """A NetParameter with one layer (name and blobs) per group of the file's `data` group."""
    out = caffe_pb2.NetParameter()
    with _open(path) as f:
        if "data" not in f:
            raise DataError(f"{path}: no 'data' group; not a Caffe HDF5 weights file "
                            "(expected data/<layer name>/<param index> datasets)")
        for name, group in f["data"].items():
            keys = sorted(group.keys(), key=lambda k: int(k) if k.isdigit() else -1)
            if keys != [str(i) for i in range(len(keys))]:
                log.warning("%s: layer '%s' has params %s, not 0..n-1 (params shared from another "
                            "layer are not stored); its params are not loaded", path, name, keys)
                continue
            layer = out.layer.add(name=name)
            for k in keys:
                array = np.asarray(group[k])
                blob = layer.blobs.add()
                blob.shape.dim.extend(array.shape)
                values = array.ravel().tolist()
                (blob.double_data if array.dtype == np.float64 else blob.data).extend(values)
    return out


def write_solver_state_hdf5(path, iteration, learned_net, current_step, history):
    """Write a solver state: scalars iter/current_step, string learned_net, history/<i>."""
    def fill(f):
        f.create_dataset("iter", data=np.array([iteration], np.int32))   # 1-D of 1, as Caffe
        f.create_dataset("learned_net", data=np.bytes_(learned_net.encode()))
        f.create_dataset("current_step", data=np.array([current_step], np.int32))
        group = f.create_group("history")
        for i, array in enumerate(history):
            group.create_dataset(str(i), data=np.asarray(array))
    _write_atomic(path, fill)


def read_solver_state_hdf5(path):
    """{iter, current_step, learned_net, history: [(shape, flat array)]} from a .solverstate.h5."""
    with _open(path) as f:
        if "iter" not in f or "history" not in f:
            raise DataError(f"{path}: not a Caffe HDF5 solver state (needs 'iter' and 'history')")
        learned = f["learned_net"][()] if "learned_net" in f else b""
        history = f["history"]
        n = len(history.keys())
        if set(history.keys()) != {str(i) for i in range(n)}:
            raise DataError(f"{path}: history datasets {sorted(history.keys())} are not 0..{n - 1}")
        arrays = [np.asarray(history[str(i)]) for i in range(n)]
        def integer(name):
            return int(np.asarray(f[name][()]).reshape(-1)[0]) if name in f else 0
        return {"iter": integer("iter"), "current_step": integer("current_step"),
                "learned_net": learned.decode() if isinstance(learned, bytes) else str(learned),
                "history": [(a.shape, a.ravel()) for a in arrays]}
