"""Every lr policy against its closed form, evaluated at the iteration before each update."""
import math

import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.proto import caffe_pb2, parse_text
from dist_caffe.solvers.lr_policy import check_policy, learning_rate


def solver(text):
    return parse_text(text, caffe_pb2.SolverParameter)


def rates(param, iters):
    out, step = [], 0
    for it in range(iters):
        rate, step = learning_rate(param, it, step)
        out.append(rate)
    return out


def f32(x):
    """A float as the float32 value stored in the SolverParameter."""
    import numpy as np
    return float(np.float32(x))


CASES = {
    'lr_policy: "fixed" base_lr: 0.1': lambda it: f32(0.1),
    'lr_policy: "step" base_lr: 0.1 gamma: 0.5 stepsize: 3':
        lambda it: f32(0.1) * 0.5 ** (it // 3),
    'lr_policy: "exp" base_lr: 0.1 gamma: 0.9':
        lambda it: f32(0.1) * f32(0.9) ** it,
    'lr_policy: "inv" base_lr: 0.01 gamma: 0.0001 power: 0.75':
        lambda it: f32(0.01) * (1 + f32(0.0001) * it) ** -0.75,
    'lr_policy: "multistep" base_lr: 1 gamma: 0.1 stepvalue: 2 stepvalue: 5 stepvalue: 6':
        lambda it: f32(0.1) ** sum(it >= s for s in (2, 5, 6)),
    'lr_policy: "poly" base_lr: 0.2 power: 2 max_iter: 10':
        lambda it: f32(0.2) * (1 - it / 10) ** 2,
    'lr_policy: "sigmoid" base_lr: 0.05 gamma: -0.5 stepsize: 4':
        lambda it: f32(0.05) / (1 + math.exp(0.5 * (it - 4))),
}


@pytest.mark.parametrize("text", list(CASES), ids=lambda t: t.split('"')[1])
def test_policy_matches_closed_form(text):
    param = solver(text)
    check_policy(param)
    expected = [CASES[text](it) for it in range(10)]
    assert rates(param, 10) == pytest.approx(expected, rel=1e-6)


def test_multistep_position_comes_from_current_step():
    """A restored multistep schedule continues from the saved current_step (Caffe advances it
    by at most one stepvalue per call, so it is state, not a function of iter)."""
    param = solver('lr_policy: "multistep" base_lr: 1 gamma: 0.5 stepvalue: 2 stepvalue: 4')
    rate, step = learning_rate(param, 4, current_step=1)
    assert (rate, step) == (0.25, 2)
    rate, step = learning_rate(param, 10, current_step=0)   # jumps one step only, as Caffe
    assert (rate, step) == (0.5, 1)


def test_step_policy_sets_current_step_as_caffe():
    """Caffe's 'step' writes current_step = iter / stepsize (it lands in the .solverstate)."""
    param = solver('lr_policy: "step" base_lr: 1 gamma: 0.5 stepsize: 3')
    assert learning_rate(param, 5, 0)[1] == 1


@pytest.mark.parametrize("text, words", [
    ('lr_policy: "cosine" base_lr: 1', "unknown policy 'cosine'"),
    ('base_lr: 1', "unknown policy ''"),
    ('lr_policy: "step" base_lr: 1 gamma: 0.1', "stepsize > 0"),
    ('lr_policy: "poly" base_lr: 1 power: 1', "max_iter > 0"),
    ('lr_policy: "multistep" base_lr: 1 gamma: 0.1', "at least one stepvalue"),
    ('lr_policy: "multistep" base_lr: 1 stepvalue: 5 stepvalue: 2', "increasing"),
])
def test_bad_policy_is_a_config_error(text, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        check_policy(solver(text), "s.prototxt")
