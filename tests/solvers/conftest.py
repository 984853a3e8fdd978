"""A tiny classifier (Input -> InnerProduct -> InnerProduct -> SoftmaxWithLoss) and its solver."""
import numpy as np
import pytest

import dist_caffe as caffe

N, D, K = 4, 5, 3

NET = """
name: "tiny"
layer {{ name: "input" type: "Input" top: "data" top: "label"
  input_param {{ shape {{ dim: {n} dim: {d} }} shape {{ dim: {n} }} }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  param {{ lr_mult: 1 decay_mult: 2 }} param {{ lr_mult: 2 decay_mult: 0 }}
  inner_product_param {{ num_output: 6 weight_filler {{ type: "gaussian" std: 0.5 }}
                        bias_filler {{ type: "constant" value: 0.1 }} }} }}
layer {{ name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  param {{ lr_mult: 0.5 }} param {{ lr_mult: 1 decay_mult: 0 }}
  inner_product_param {{ num_output: {k} weight_filler {{ type: "gaussian" std: 0.5 }} }} }}
{frozen}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "{top}" bottom: "label" top: "loss" }}
{test_layers}
"""
FROZEN = """
layer { name: "frozen" type: "InnerProduct" bottom: "ip2" top: "frozen"
  param { lr_mult: 0 } param { lr_mult: 0 }
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
"""
ACCURACY = """
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy"
  include { phase: TEST } }
"""


def net_text(n=N, frozen=False, accuracy=False):
    return NET.format(n=n, d=D, k=K, frozen=FROZEN if frozen else "",
                      top="frozen" if frozen else "ip2", test_layers=ACCURACY if accuracy else "")


def write_solver(folder, solver_text, n=N, frozen=False, accuracy=False):
    """Write net.prototxt and solver.prototxt into `folder`; returns the solver path."""
    (folder / "net.prototxt").write_text(net_text(n, frozen, accuracy))
    path = folder / "solver.prototxt"
    path.write_text(f'net: "net.prototxt"\nsnapshot_prefix: "{folder}/snap"\n'
                    f"random_seed: 7\n{solver_text}")
    return path


def batches(count, n=N, seed=0):
    g = np.random.default_rng(seed)
    return [(g.normal(size=(n, D)).astype(np.float32), g.integers(0, K, n).astype(np.float32))
            for _ in range(count)]


def feed_each_pass(solver, data):
    """Feed data[j] before the j-th forward/backward pass of the solver's train net."""
    original, state = solver.net.forward_backward, {"j": 0}

    def forward_backward():
        x, y = data[state["j"] % len(data)]
        solver.net.blobs["data"].data = x        # the setter copies across devices
        solver.net.blobs["label"].data = y
        state["j"] += 1
        return original()
    solver.net.forward_backward = forward_backward
    return state


@pytest.fixture
def make_solver(tmp_path):
    def make(solver_text, n=N, frozen=False, accuracy=False, kind=None):
        path = write_solver(tmp_path, solver_text, n, frozen, accuracy)
        return (kind or caffe.get_solver)(str(path))
    return make
