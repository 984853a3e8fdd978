"""Snapshots: <prefix>_iter_<N>.caffemodel + .solverstate (or .caffemodel.h5 + .solverstate.h5).

Reads snapshot_prefix, snapshot_format and snapshot_diff. The .solverstate is Caffe's
SolverState (iter, learned_net, current_step, history): history holds one blob per learnable
param in *Caffe's* order (layer order, owners of shared params only, frozen params included),
all of the first history set, then all of the second (AdaDelta, Adam), so the files
interchange with BVLC Caffe. Every file is written to a temp file and renamed.
"""
import logging
import os
from dataclasses import dataclass, field

import numpy as np

from .. import backend, hdf5
from ..blob import legacy_shape, shape_fits
from ..errors import ConfigError
from ..proto import caffe_pb2, packed, read_binary_proto, write_binary

log = logging.getLogger("dist_caffe.solver")
BINARYPROTO, HDF5 = caffe_pb2.SolverParameter.BINARYPROTO, caffe_pb2.SolverParameter.HDF5


@dataclass
class State:
    """A solver state read from a file: history arrays in Caffe's order, with their shapes."""
    iter: int = 0
    current_step: int = 0
    learned_net: str = ""
    history: list = field(default_factory=list)  # (shape, flat float array)


def caffe_order(net):
    """The net's params (ParamEntry) in Caffe's learnable_params order."""
    position = {name: i for i, name in enumerate(net.layer_dict)}
    return sorted(net.param_layout, key=lambda e: (position[e.layer_name], e.index))


def filename(solver, extension):
    return f"{solver.param.snapshot_prefix}_iter_{solver.iter}{extension}"


def write(solver):
    """Write the model, then the solver state; returns (model path, state path)."""
    h5 = solver.param.snapshot_format == HDF5
    model = filename(solver, ".caffemodel.h5" if h5 else ".caffemodel")
    state = filename(solver, ".solverstate.h5" if h5 else ".solverstate")
    kind = "HDF5 file" if h5 else "binary proto file"
    log.info("Snapshotting to %s %s", kind, model)
    if h5:
        hdf5.write_net_hdf5(solver.net, model, write_diff=solver.param.snapshot_diff)
    else:
        solver.net.save(model, write_diff=solver.param.snapshot_diff)
    log.info("Snapshotting solver state to %s %s", kind, state)
    shapes = [e.blob.shape for e in caffe_order(solver.net)]
    arrays = [backend.to_cpu(view).reshape(shape)
              for views in solver.history_views() for shape, view in zip(shapes, views)]
    if h5:
        hdf5.write_solver_state_hdf5(state, solver.iter, model, solver.current_step, arrays)
    else:
        proto = caffe_pb2.SolverState(iter=solver.iter, learned_net=model,
                                      current_step=solver.current_step)
        for a in arrays:
            fill_blob_proto(proto.history.add(), a)
        write_binary(proto, state)
    return model, state


def read(path):
    """A State from a .solverstate (binary) or .solverstate.h5 file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such solver state file (expected "
                          "<prefix>_iter_<N>.solverstate or .solverstate.h5)")
    if path.endswith(".h5"):
        return State(**hdf5.read_solver_state_hdf5(path))
    proto = read_binary_proto(path, caffe_pb2.SolverState)
    history = [(legacy_shape(b), blob_values(b)) for b in proto.history]
    return State(proto.iter, proto.current_step, proto.learned_net, history)


def fill_blob_proto(blob, array):
    """Set blob's shape and values from `array` (float64 -> double_data, else data)."""
    a = np.asarray(array)
    blob.shape.dim.extend(a.shape)
    packed.set_values(blob, "double_data" if a.dtype == np.float64 else "data", a.ravel())
    return blob


def blob_values(blob):
    """The flat values of a BlobProto (double_data when set, else data)."""
    return packed.get_values(blob, "double_data" if len(blob.double_data) else "data")


def _learned_net_path(state, path):
    """learned_net as written (Caffe reads it from the working directory), else beside `path`."""
    name = state.learned_net
    if os.path.exists(name) or os.path.isabs(name):
        return name
    beside = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.basename(name))
    return beside if os.path.exists(beside) else name


def restore(solver, path):
    """Load iter, current_step, history and the learned net of a snapshot into `solver`."""
    path = os.fspath(path)
    state = read(path)
    entries = caffe_order(solver.net)
    sets = solver.num_history
    if len(state.history) != sets * len(entries):
        raise ConfigError(
            f"{path}: {len(state.history)} history blobs, but this {solver.type} solver on net "
            f"'{solver.net.name}' needs {sets * len(entries)} ({sets} per param, {len(entries)} "
            "params): the snapshot comes from a different net or solver type")
    for i, (shape, values) in enumerate(state.history):
        e = entries[i % len(entries)]
        if not shape_fits(e.blob.shape, shape) or values.size != e.count:
            raise ConfigError(
                f"{path}: history blob {i} has shape {shape} ({values.size} values) but param "
                f"{e.index} of layer '{e.layer_name}' has shape {e.blob.shape}: the snapshot comes "
                "from a different net; resume only with the net that wrote it")
    if state.learned_net:
        solver.net.copy_from(_learned_net_path(state, path))
    for k, views in enumerate(solver.history_views()):
        for j, view in enumerate(views):
            _, values = state.history[k * len(entries) + j]
            backend.copy_into(view, values.astype(view.dtype))
    solver.iter, solver.current_step = state.iter, state.current_step
