"""Snapshot -> restore -> continue equals an uninterrupted run exactly; file formats."""
import numpy as np
import pytest

import dist_caffe as caffe
from dist_caffe.errors import ConfigError
from dist_caffe.proto import caffe_pb2, read_binary_proto
from dist_caffe.solvers import snapshot as snap

from .conftest import batches, feed_each_pass

RULES = {
    "SGD": "momentum: 0.9", "Nesterov": "momentum: 0.9", "AdaGrad": "", "RMSProp": "",
    "AdaDelta": "momentum: 0.9", "Adam": "momentum: 0.9 momentum2: 0.999",
}
SCHEDULE = ('base_lr: 0.05 lr_policy: "multistep" gamma: 0.5 stepvalue: 2 stepvalue: 4 '
            "weight_decay: 0.001 max_iter: 6 iter_size: 2 ")


def params(solver):
    return {(n, i): b.data.copy() for n, bs in solver.net.params.items() for i, b in enumerate(bs)}


@pytest.mark.parametrize("fmt", ["BINARYPROTO", "HDF5"])
@pytest.mark.parametrize("kind", list(RULES))
def test_restore_then_continue_is_exact(make_solver, tmp_path, kind, fmt):
    text = f'type: "{kind}" {SCHEDULE} {RULES[kind]} snapshot: 3 snapshot_format: {fmt}'
    data = batches(12, seed=5)
    whole = make_solver(text, frozen=True)
    feed_each_pass(whole, data)
    whole.step(6)
    ext = ".h5" if fmt == "HDF5" else ""
    state = tmp_path / f"snap_iter_3.solverstate{ext}"
    assert state.is_file() and (tmp_path / f"snap_iter_3.caffemodel{ext}").is_file()

    resumed = make_solver(text, frozen=True)       # fresh weights (same seed), then the restore
    feed_each_pass(resumed, data)["j"] = 6         # batches 6.. as in the whole run
    resumed.restore(str(state))
    assert (resumed.iter, resumed.current_step) == (3, 1)
    resumed.step(3)
    for key, value in params(whole).items():
        np.testing.assert_array_equal(params(resumed)[key], value, err_msg=str(key))
    np.testing.assert_array_equal(resumed.history, whole.history)
    assert resumed.current_step == whole.current_step == 2


def test_solverstate_layout_is_caffes(make_solver, tmp_path):
    """History: one blob per param in layer order (frozen included), per history set."""
    solver = make_solver('type: "Adam" base_lr: 0.01 lr_policy: "fixed"', frozen=True)
    feed_each_pass(solver, batches(1))
    solver.step(1)
    _, state_path = solver.snapshot()
    state = read_binary_proto(state_path, caffe_pb2.SolverState)
    shapes = [tuple(h.shape.dim) for h in state.history]
    per_set = [(6, 5), (6,), (3, 6), (3,), (3, 3), (3,)]
    assert shapes == per_set * 2
    assert state.iter == 1 and state.learned_net == str(tmp_path / "snap_iter_1.caffemodel")
    m = np.asarray(state.history[0].data)      # first set is Adam's m of ip1's weights
    np.testing.assert_array_equal(m, solver.history_views()[0][0])
    assert not np.asarray(state.history[4].data).any()   # frozen: zero history
    assert solver.net.layer_dict["ip1"].blobs[0].data.shape == (6, 5)


def test_snapshot_of_a_different_net_is_refused(make_solver, tmp_path):
    solver = make_solver('base_lr: 0.1 lr_policy: "fixed"')
    _, state = solver.snapshot()
    (tmp_path / "net.prototxt").write_text(
        (tmp_path / "net.prototxt").read_text().replace("num_output: 6", "num_output: 7"))
    other = caffe.get_solver(str(tmp_path / "solver.prototxt"))
    with pytest.raises(ConfigError, match=r"history blob 0 has shape \(6, 5\).*layer 'ip1' has "
                                          r"shape \(7, 5\).*different net"):
        other.restore(state)


def test_snapshot_of_another_solver_type_is_refused(make_solver):
    _, state = make_solver('base_lr: 0.1 lr_policy: "fixed"').snapshot()
    adam = make_solver('type: "Adam" base_lr: 0.1 lr_policy: "fixed"')
    with pytest.raises(ConfigError, match="4 history blobs, but this Adam solver .* needs 8"):
        adam.restore(state)


def test_missing_solverstate(make_solver, tmp_path):
    with pytest.raises(ConfigError, match="no such solver state file"):
        make_solver('base_lr: 0.1 lr_policy: "fixed"').restore(str(tmp_path / "nope.solverstate"))


def test_hdf5_weights_round_trip_and_load(make_solver, tmp_path):
    from dist_caffe.hdf5 import read_net_hdf5, write_net_hdf5
    solver = make_solver('base_lr: 0.1 lr_policy: "fixed"', frozen=True)
    path = tmp_path / "w.caffemodel.h5"
    write_net_hdf5(solver.net, path, write_diff=True)
    import h5py
    with h5py.File(path) as f:
        assert sorted(f["data"]) == sorted(solver.net.layer_dict)
        np.testing.assert_array_equal(f["data/ip1/0"][()], solver.net.params["ip1"][0].data)
        assert f["diff/ip2/1"].shape == (3,)
    names = [layer.name for layer in read_net_hdf5(path).layer if layer.blobs]
    assert sorted(names) == ["frozen", "ip1", "ip2"]
    net = caffe.Net(str(tmp_path / "net.prototxt"), str(path), caffe.TEST)
    for key, value in params(solver).items():
        np.testing.assert_array_equal(net.params[key[0]][key[1]].data, value)


def test_snapshot_is_atomic_and_leaves_no_temp_files(make_solver, tmp_path):
    solver = make_solver('base_lr: 0.1 lr_policy: "fixed"')
    first = solver.snapshot()
    solver.snapshot()                                  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["net.prototxt", "solver.prototxt"] + [p.rsplit("/", 1)[-1] for p in first])
    assert snap.read(first[1]).iter == 0
