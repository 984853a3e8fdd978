"""Bad solver files: each a ConfigError that names the file, the field and the fix."""
import pytest

import dist_caffe as caffe
from dist_caffe.errors import ConfigError

from .conftest import write_solver

OK = 'base_lr: 0.1 lr_policy: "fixed" '


def build(tmp_path, text, kind=None, net_line=True):
    path = write_solver(tmp_path, OK + text, accuracy=True)
    if not net_line:
        path.write_text(path.read_text().replace('net: "net.prototxt"\n', ""))
    return (kind or caffe.get_solver)(str(path))


@pytest.mark.parametrize("text, message", [
    ('type: "Adagrad"', r"type: unknown solver type 'Adagrad' \(known: SGD, Nesterov, AdaGrad, "
                        r"RMSProp, AdaDelta, Adam\); type names are case-sensitive"),
    ('test_iter: 1 test_iter: 2 test_net: "net.prototxt" test_net: "net.prototxt" '
     'test_net: "net.prototxt" test_interval: 5',
     "test_iter has 2 entries but there are 3 test nets"),
    ('test_iter: 2 test_iter: 2 test_state { stage: "a" } test_state { stage: "b" } test_state { } '
     "test_interval: 5", "3 test_state entries for 2 test nets"),
    ("test_iter: 2", "test_interval is 0; set test_interval > 0"),
    ('train_net: "net.prototxt"', "several train nets given \\(train_net, net\\)"),
    ('type: "AdaGrad" momentum: 0.9', "momentum: found 0.9.*cannot be used with AdaGrad"),
    ('type: "RMSProp" rms_decay: 1.5', "rms_decay: found 1.5, expected a value in \\[0, 1\\)"),
    ('regularization_type: "L3"', "regularization_type: unknown type 'L3' \\(known: L1, L2\\)"),
    ("iter_size: 0", "iter_size: found 0, expected >= 1"),
    ('test_net: "nope.prototxt" test_iter: 1 test_interval: 1',
     "net file 'nope.prototxt' not found \\(tried 'nope.prototxt' or '.*/nope.prototxt' and "
     "its parent folders\\)"),
])
def test_bad_solver(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as err:
        build(tmp_path, text)
    assert "solver.prototxt" in str(err.value)


def test_snapshot_folder_must_exist(tmp_path):
    path = write_solver(tmp_path, OK + "snapshot: 10")
    path.write_text(path.read_text().replace(str(tmp_path), "/nonexistent/dir"))
    with pytest.raises(ConfigError, match="snapshot_prefix: cannot write snapshots to "
                                          "'/nonexistent/dir/snap': folder /nonexistent/dir does"):
        caffe.get_solver(str(path))


def test_missing_net(tmp_path):
    with pytest.raises(ConfigError, match="no train net; set one of net, net_param, train_net, "
                                          "train_net_param"):
        build(tmp_path, "", net_line=False)


def test_legacy_solver_type_enum(tmp_path):
    solver = build(tmp_path, "solver_type: NESTEROV momentum: 0.9")
    assert type(solver).__name__ == "NesterovSolver" and solver.type == "Nesterov"
    assert isinstance(solver, caffe.SGDSolver)       # as in Caffe, every solver is an SGDSolver


def test_solver_class_ignores_type_field(tmp_path):
    solver = build(tmp_path, 'type: "Adam"', kind=caffe.AdaDeltaSolver)
    assert solver.type == "AdaDelta" and solver.history.shape[0] == 2


def test_generic_net_gives_one_test_net_per_test_iter(tmp_path):
    solver = build(tmp_path, 'test_iter: 1 test_iter: 2 test_interval: 5 '
                             'test_state { stage: "x" } test_state { }')
    assert len(solver.test_nets) == 2
    assert [list(n.param.state.stage) for n in solver.test_nets] == [["x"], []]
    assert all(n.phase == caffe.TEST for n in solver.test_nets) and solver.net.phase == caffe.TRAIN
    assert "accuracy" in solver.test_nets[0].blobs and "accuracy" not in solver.net.blobs


def test_net_path_is_read_from_cwd_then_beside_the_solver(tmp_path, monkeypatch):
    path = write_solver(tmp_path, OK)
    monkeypatch.chdir("/")
    assert caffe.get_solver(str(path)).net.name == "tiny"


def test_net_path_from_a_parent_folder_as_in_caffes_examples(tmp_path, monkeypatch):
    """examples/mnist/lenet_solver.prototxt says net: "examples/mnist/lenet_train_test..."."""
    folder = tmp_path / "examples" / "mnist"
    folder.mkdir(parents=True)
    path = write_solver(folder, OK)
    text = path.read_text().replace('net: "net.prototxt"', 'net: "examples/mnist/net.prototxt"')
    path.write_text(text)
    monkeypatch.chdir("/")
    assert caffe.get_solver(str(path)).net.source == str(folder / "net.prototxt")


def test_default_snapshot_prefix_is_the_solver_path(tmp_path):
    path = write_solver(tmp_path, OK)
    path.write_text(path.read_text().replace(f'snapshot_prefix: "{tmp_path}/snap"\n', ""))
    solver = caffe.get_solver(str(path))
    assert solver.param.snapshot_prefix == str(tmp_path / "solver")
    assert solver.snapshot()[0] == str(tmp_path / "solver_iter_0.caffemodel")
