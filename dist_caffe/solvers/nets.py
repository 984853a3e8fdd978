"""Which nets a SolverParameter describes: the train net, the test nets and their NetStates.

Reads net, net_param, train_net, train_net_param, test_net, test_net_param, train_state,
test_state, test_iter, test_interval and snapshot_prefix, with Caffe's rules: exactly one
train-net field; test nets are every test_net_param, then every test_net, then as many copies
of the generic net (net / net_param) as test_iter has entries left; test_iter needs one entry
per test net. Net paths are read relative to the working directory as Caffe does, falling back
to the solver file's folder and its parents, so `dist-caffe train -solver runs/x/solver.prototxt`
(or Caffe's examples/mnist/lenet_solver.prototxt, whose paths start at the Caffe root) works
from anywhere.
"""
import os

from ..errors import ConfigError
from ..layer import TEST, TRAIN
from ..proto import caffe_pb2, read_net_param, read_solver_param

TRAIN_FIELDS = ("train_net_param", "train_net", "net_param", "net")


def load_solver_param(param_or_path, source=None):
    """(SolverParameter, source name) from a solver prototxt path or a SolverParameter; for the
    latter, `source` names the file it came from (net paths are then also read beside it)."""
    if isinstance(param_or_path, caffe_pb2.SolverParameter):
        param = caffe_pb2.SolverParameter()
        param.CopyFrom(param_or_path)
        return param, source or "<SolverParameter>"
    path = os.fspath(param_or_path)
    param = read_solver_param(path)
    _default_snapshot_prefix(param, path)
    return param, path


def _default_snapshot_prefix(param, path):
    """Caffe's rule: no snapshot_prefix -> the solver path without its extension; a prefix that
    is a folder -> <folder>/<solver file stem>."""
    stem = os.path.splitext(path)[0]
    if not param.HasField("snapshot_prefix"):
        param.snapshot_prefix = stem
    elif os.path.isdir(param.snapshot_prefix):
        param.snapshot_prefix = os.path.join(param.snapshot_prefix, os.path.basename(stem))


def resolve(path, source):
    """A net path as given when it exists (Caffe reads it from the working directory), else
    relative to the solver file's folder or one of its parents (Caffe's examples name paths
    from the Caffe root); ConfigError when none exists."""
    candidates = [path]
    if not (os.path.isabs(path) or not source or source.startswith("<")):
        folder = os.path.dirname(os.path.abspath(source))
        while True:
            candidates.append(os.path.join(folder, path))
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    tried = " or ".join(repr(c) for c in candidates[:2])
    raise ConfigError(f"{source}: net file {path!r} not found (tried {tried}"
                      f"{' and its parent folders' if len(candidates) > 2 else ''}); paths in a "
                      "solver are read from the working directory, then from the solver's folder")


def _with_state(net_param, phase, extra_state=None):
    """A copy of net_param whose state is NetState(phase) merged with its own and extra_state."""
    state = caffe_pb2.NetState(phase=phase)
    state.MergeFrom(net_param.state)
    if extra_state is not None:
        state.MergeFrom(extra_state)
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net_param)
    out.state.CopyFrom(state)
    return out


def train_net_param(param, source):
    """(NetParameter of the train net with state TRAIN + its own + train_state, its file name)."""
    given = [f for f in TRAIN_FIELDS
             if (param.HasField(f) if f.endswith("param") else bool(getattr(param, f)))]
    if not given:
        raise ConfigError(f"{source}: no train net; set one of net, net_param, train_net, "
                          "train_net_param (e.g. net: \"train_val.prototxt\")")
    if len(given) > 1:
        raise ConfigError(f"{source}: several train nets given ({', '.join(given)}); keep exactly "
                          "one of net, net_param, train_net, train_net_param")
    field = given[0]
    value = getattr(param, field)
    if field.endswith("param"):
        return _with_state(value, TRAIN, param.train_state), f"{source} ({field})"
    path = resolve(value, source)
    return _with_state(read_net_param(path), TRAIN, param.train_state), path


def test_net_params(param, source):
    """[(NetParameter, file name)] of the test nets, in Caffe's order, each with its TEST state."""
    generic = [f for f in ("net_param", "net") if
               (param.HasField(f) if f == "net_param" else bool(param.net))]
    if len(generic) > 1:
        raise ConfigError(f"{source}: both net and net_param are given; keep one")
    nets = [(n, f"{source} (test_net_param)") for n in param.test_net_param]
    paths = [resolve(p, source) for p in param.test_net]
    nets += [(read_net_param(p), p) for p in paths]
    n_iter, n_specific = len(param.test_iter), len(nets)
    if (n_iter < n_specific) if generic else (n_iter != n_specific):
        raise ConfigError(
            f"{source}: test_iter has {n_iter} entries but there are {n_specific} test nets "
            f"(test_net/test_net_param){' plus copies of the generic net' if generic else ''}; "
            "give one test_iter per test net")
    if generic and n_iter > n_specific:
        if param.HasField("net_param"):
            net = (param.net_param, f"{source} (net_param)")
        else:
            path = resolve(param.net, source)
            net = (read_net_param(path), path)
        nets += [net] * (n_iter - n_specific)
    if param.test_state and len(param.test_state) != len(nets):
        raise ConfigError(f"{source}: {len(param.test_state)} test_state entries for {len(nets)} "
                          "test nets; give none or one per test net")
    if nets and param.test_interval <= 0:
        raise ConfigError(f"{source}: {len(nets)} test net(s) but test_interval is "
                          f"{param.test_interval}; set test_interval > 0 (iterations between "
                          "tests)")
    states = list(param.test_state) or [None] * len(nets)
    return [(_with_state(n, TEST, s), name) for (n, name), s in zip(nets, states)]
