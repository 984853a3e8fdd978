"""LSTMUnit: one LSTM step from pre-activated gates."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


N, H = 3, 4
CONT = np.array([[1.0, 0.0, 1.0]])


def sig(v):
    return 1 / (1 + np.exp(-v))


def inputs(seed=0):
    g = np.random.default_rng(seed)
    return [g.standard_normal((1, N, H)), g.standard_normal((1, N, 4 * H)), CONT]


def test_lstm_unit_forward_matches_formulas():
    c_prev, gates, cont = inputs()
    c, h = run_layer(make_layer("type: 'LSTMUnit'"), [c_prev, gates, cont])
    for n in range(N):
        x = gates[0, n]
        i, f, o, g = sig(x[:H]), cont[0, n] * sig(x[H:2 * H]), sig(x[2 * H:3 * H]), np.tanh(x[3 * H:])
        c_ref = f * c_prev[0, n] + i * g
        np.testing.assert_allclose(c[0, n], c_ref, rtol=1e-12)
        np.testing.assert_allclose(h[0, n], o * np.tanh(c_ref), rtol=1e-12)


def test_lstm_unit_gradient():
    check_gradient(make_layer("type: 'LSTMUnit'"), bottoms=inputs(1), check_bottom=[0, 1])


def test_lstm_unit_bad_shapes_and_cont_gradient():
    c_prev, gates, cont = inputs()
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'LSTMUnit'"), [c_prev, gates[:, :, :-1], cont])
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'LSTMUnit'"), [c_prev[0], gates, cont])
    layer = make_layer("type: 'LSTMUnit'")
    bottom, top = setup_layer(layer, [c_prev, gates, cont])
    layer.forward(bottom, top)
    with pytest.raises(ConfigError, match="propagate_down"):
        layer.backward(top, [True, True, True], bottom)


@pytest.mark.gpu
def test_lstm_unit_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'LSTMUnit'", bottoms=inputs(2), propagate_down=[True, True, False])
