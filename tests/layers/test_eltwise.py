"""Eltwise: PROD/SUM/MAX (coeffs, Caffe's MAX ties), gradients, in place, errors, BVLC Caffe."""
import numpy as np
import pytest

from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import assert_caffe_close, caffe_layer


SHAPE = (2, 3, 4, 5)


def eltwise_text(body):
    return f"type: 'Eltwise' eltwise_param {{ {body} }}"


def inputs(n, seed=0):
    g = np.random.default_rng(seed)
    return [g.standard_normal(SHAPE) for _ in range(n)]


def test_eltwise_sum_is_the_default():
    xs = inputs(3)
    (y,) = run_layer(make_layer("type: 'Eltwise'"), xs)
    np.testing.assert_allclose(y, xs[0] + xs[1] + xs[2], rtol=1e-14)


def test_eltwise_sum_with_coeffs():
    xs = inputs(3)
    (y,) = run_layer(make_layer(eltwise_text("operation: SUM coeff: 1 coeff: -0.5 coeff: 2")), xs)
    np.testing.assert_allclose(y, xs[0] - 0.5 * xs[1] + 2 * xs[2], rtol=1e-14)


def test_eltwise_prod():
    xs = inputs(3)
    (y,) = run_layer(make_layer(eltwise_text("operation: PROD")), xs)
    np.testing.assert_allclose(y, xs[0] * xs[1] * xs[2], rtol=1e-14)


def test_eltwise_max_forward_and_backward():
    xs, dy = inputs(3), inputs(1, seed=1)[0]
    layer = make_layer(eltwise_text("operation: MAX"))
    bottom, top = setup_layer(layer, xs)
    layer.forward(bottom, top)
    top[0].diff[...] = dy
    layer.backward(top, [True] * 3, bottom)
    np.testing.assert_array_equal(top[0].data, np.maximum.reduce(xs))
    winner = np.argmax(np.stack(xs), axis=0)
    for i in range(3):
        np.testing.assert_array_equal(bottom[i].diff, np.where(winner == i, dy, 0))


def test_eltwise_max_ties_follow_caffe():
    # Caffe compares bottoms 0 and 1 with '>' (a tie goes to 1), later bottoms with '>' too
    # (a tie keeps the earlier winner).
    a = np.array([1.0, 1.0, 2.0, 0.0])
    b = np.array([1.0, 0.0, 2.0, 0.0])
    c = np.array([0.0, 1.0, 2.0, 0.0])
    layer = make_layer(eltwise_text("operation: MAX"))
    bottom, top = setup_layer(layer, [a, b, c])
    layer.forward(bottom, top)
    top[0].diff[...] = 1
    layer.backward(top, [True] * 3, bottom)
    winners = np.argmax(np.stack([blob.diff for blob in bottom]), axis=0)
    np.testing.assert_array_equal(winners, [1, 0, 1, 1])
    np.testing.assert_array_equal(sum(blob.diff for blob in bottom), np.ones(4))


@pytest.mark.parametrize("body, n", [
    ("", 2), ("operation: SUM coeff: 0.5 coeff: -2 coeff: 3", 3),
    ("operation: PROD", 2), ("operation: PROD", 3),
    ("operation: PROD stable_prod_grad: false", 3),
    ("operation: MAX", 2), ("operation: MAX", 3),
])
def test_eltwise_gradient(body, n):
    # Distinct inputs away from 0: the unstable PROD divides, MAX's winner must not flip.
    shape = (2, 3, 2, 3)
    g = np.random.default_rng(7)
    pool = g.permutation(np.linspace(0.5, 3, n * 36)) * g.choice([-1, 1], n * 36)
    bottoms = list(pool.reshape((n,) + shape))
    check_gradient(make_layer(eltwise_text(body)), bottoms=bottoms)


@pytest.mark.parametrize("body", ["operation: PROD", "operation: SUM coeff: 2 coeff: -1",
                                  "operation: MAX", "operation: PROD stable_prod_grad: false"])
def test_eltwise_in_place_matches_out_of_place(body):
    xs, dy = inputs(2, seed=3), inputs(1, seed=4)[0]
    out = []
    for in_place in (False, True):
        layer = make_layer(eltwise_text(body))
        bottom = [Blob(SHAPE, np.float64) for _ in xs]
        for blob, x in zip(bottom, xs):
            blob.data[...] = x
        top = [bottom[0] if in_place else Blob((), np.float64)]
        layer.setup(bottom, top)
        layer.forward(bottom, top)
        y = top[0].data.copy()
        top[0].diff[...] = dy
        layer.backward(top, [True, True], bottom)
        out.append([y] + [b.diff.copy() for b in bottom])
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("body, field", [
    ("coeff: 1 coeff: 2 coeff: 3", r"eltwise_param\.coeff.*3 values for 2 bottoms"),
    ("operation: PROD coeff: 1 coeff: 2", r"eltwise_param\.coeff.*PROD"),
    ("operation: MAX coeff: 1 coeff: 2", r"eltwise_param\.coeff.*MAX"),
])
def test_eltwise_bad_coeff_names_field(body, field):
    with pytest.raises(ConfigError, match=field):
        setup_layer(make_layer(eltwise_text(body)), [np.zeros(3), np.zeros(3)])


def test_eltwise_shape_mismatch_names_bottoms_and_shapes():
    layer = make_layer("type: 'Eltwise' bottom: 'a' bottom: 'b'")
    with pytest.raises(ConfigError, match=r"bottom\[1\] 'b' has shape \(2, 4\).*'a' has \(2, 3\)"):
        setup_layer(layer, [np.zeros((2, 3)), np.zeros((2, 4))])


@pytest.mark.parametrize("case, name, bottoms", [
    ("layer_zoo_b", "eltsum", ["data", "other"]),
    ("layer_zoo_b", "eltprod", ["data", "other", "eltsum"]),
    ("layer_zoo_b", "eltmax", ["data", "other"]),
    ("layer_zoo_d", "eltsum_d", ["embed", "x", "embed_nb"]),
])
def test_eltwise_matches_bvlc_caffe(case, name, bottoms, conformance):
    layer, ref = caffe_layer(conformance, case, name)
    b, t = setup_layer(layer, [ref[f"data/{n}"] for n in bottoms])
    layer.forward(b, t)
    assert_caffe_close(t[0].data, ref[f"data/{layer.param.top[0]}"])


@pytest.mark.gpu
@pytest.mark.parametrize("body", ["operation: PROD", "coeff: 2 coeff: -1 coeff: 0.5",
                                  "operation: MAX", "operation: PROD stable_prod_grad: false"])
def test_eltwise_cpu_gpu_parity(body):
    assert_cpu_gpu_parity(eltwise_text(body), bottoms=inputs(3, seed=5), rtol=1e-10, atol=1e-12)
