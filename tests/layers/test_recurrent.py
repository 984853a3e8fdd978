"""RNN and LSTM: against step-by-step references, gradients, state carried between batches."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


T, N, X, S, H = 4, 2, 3, 2, 5
CONT = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
FILLERS = "weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: 'gaussian' std: 0.3 }"


def text(kind, expose=False):
    return (f"type: '{kind}' recurrent_param {{ num_output: {H} {FILLERS} "
            f"expose_hidden: {str(expose).lower()} }}")


def sig(v):
    return 1 / (1 + np.exp(-v))


def rnn_reference(blobs, x, cont, static=None, h0=None):
    """Caffe's unrolled RNN, one stream and one step at a time."""
    w_xh, b_h = blobs[0], blobs[1]
    w_s = blobs[2] if static is not None else None
    w_hh, w_ho, b_o = blobs[-3:]
    out, h_last = np.zeros((len(x), x.shape[1], H)), np.zeros((x.shape[1], H))
    for n in range(x.shape[1]):
        h = np.zeros(H) if h0 is None else h0[0, n]
        for t in range(len(x)):
            a = w_hh @ (cont[t, n] * h) + w_xh @ x[t, n].ravel() + b_h
            if static is not None:
                a = a + w_s @ static[n]
            h = np.tanh(a)
            out[t, n] = np.tanh(w_ho @ h + b_o)
        h_last[n] = h
    return out, h_last


def lstm_reference(blobs, x, cont, static=None, h0=None, c0=None):
    """Caffe's unrolled LSTM, one stream and one step at a time."""
    w_xc, b_c = blobs[0], blobs[1]
    w_s = blobs[2] if static is not None else None
    w_hc = blobs[-1]
    out, h_last, c_last = (np.zeros((len(x), x.shape[1], H)), np.zeros((x.shape[1], H)),
                           np.zeros((x.shape[1], H)))
    for n in range(x.shape[1]):
        h = np.zeros(H) if h0 is None else h0[0, n]
        c = np.zeros(H) if c0 is None else c0[0, n]
        for t in range(len(x)):
            z = w_hc @ (cont[t, n] * h) + w_xc @ x[t, n].ravel() + b_c
            if static is not None:
                z = z + w_s @ static[n]
            i, f = sig(z[:H]), cont[t, n] * sig(z[H:2 * H])
            o, g = sig(z[2 * H:3 * H]), np.tanh(z[3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
            out[t, n] = h
        h_last[n], c_last[n] = h, c
    return out, h_last, c_last


REFERENCES = {"RNN": rnn_reference, "LSTM": lstm_reference}
SHAPES = {"RNN": [(H, X), (H,), (H, H), (H, H), (H,)], "LSTM": [(4 * H, X), (4 * H,), (4 * H, H)]}


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_recurrent_param_shapes_follow_caffes_unrolled_net(kind):
    layer = make_layer(text(kind))
    setup_layer(layer, [np.zeros((T, N, X)), CONT])
    assert [b.shape for b in layer.blobs] == SHAPES[kind]
    static = make_layer(text(kind))
    setup_layer(static, [np.zeros((T, N, X)), CONT, np.zeros((N, S))])
    assert static.blobs[2].shape == (SHAPES[kind][0][0], S)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
@pytest.mark.parametrize("with_static", [False, True])
def test_recurrent_forward_matches_reference(kind, with_static):
    g = np.random.default_rng(0)
    x, static = g.standard_normal((T, N, X)), g.standard_normal((N, S))
    layer = make_layer(text(kind))
    bottoms = [x, CONT] + ([static] if with_static else [])
    (y,) = run_layer(layer, bottoms)
    ref = REFERENCES[kind]([b.data for b in layer.blobs], x, CONT, static if with_static else None)
    np.testing.assert_allclose(y, ref[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_recurrent_exposed_hidden_state_in_and_out(kind):
    g = np.random.default_rng(1)
    x = g.standard_normal((T, N, X))
    states = [g.standard_normal((1, N, H)) for _ in range(2 if kind == "LSTM" else 1)]
    layer = make_layer(text(kind, expose=True))
    tops = run_layer(layer, [x, np.ones((T, N))] + states)
    ref = REFERENCES[kind]([b.data for b in layer.blobs], x, np.ones((T, N)), None, *states)
    for top, expected in zip(tops, ref):
        np.testing.assert_allclose(top.reshape(expected.shape), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_recurrent_carries_the_last_state_into_the_next_batch(kind):
    g = np.random.default_rng(2)
    x1, x2 = g.standard_normal((T, N, X)), g.standard_normal((T, N, X))
    layer = make_layer(text(kind))
    bottom, top = setup_layer(layer, [x1, np.ones((T, N))])
    layer.forward(bottom, top)
    bottom[0].data[...] = x2
    layer.forward(bottom, top)
    blobs = [b.data for b in layer.blobs]
    both = REFERENCES[kind](blobs, np.concatenate([x1, x2]), np.ones((2 * T, N)))[0]
    np.testing.assert_allclose(top[0].data, both[T:], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
@pytest.mark.parametrize("with_static", [False, True])
def test_recurrent_gradient(kind, with_static):
    g = np.random.default_rng(3)
    bottoms = [g.standard_normal((T, N, X)), CONT] + ([g.standard_normal((N, S))] if with_static else [])
    check_gradient(make_layer(text(kind)), bottoms=bottoms,
                   check_bottom=[0, 2] if with_static else [0], max_checks=40)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_recurrent_gradient_through_exposed_states(kind):
    g = np.random.default_rng(4)
    k = 2 if kind == "LSTM" else 1
    bottoms = [g.standard_normal((T, N, X)), CONT] + [g.standard_normal((1, N, H)) for _ in range(k)]
    check_gradient(make_layer(text(kind, expose=True)), bottoms=bottoms,
                   check_bottom=[0] + [2 + i for i in range(k)], num_top=1 + k, max_checks=40)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_recurrent_bad_config_names_field(kind):
    x = np.zeros((T, N, X))
    with pytest.raises(ConfigError, match="recurrent_param.num_output"):
        setup_layer(make_layer(f"type: '{kind}'"), [x, CONT])
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer(text(kind)), [x, CONT[:2]])
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer(text(kind, expose=True)), [x, CONT, np.zeros((1, N, H + 1))]
                    + ([np.zeros((1, N, H))] if kind == "LSTM" else []))
    layer = make_layer(text(kind))
    bottom, top = setup_layer(layer, [x, CONT])
    layer.forward(bottom, top)
    with pytest.raises(ConfigError, match="propagate_down"):
        layer.backward(top, [True, True], bottom)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_recurrent_cpu_gpu_parity(kind):
    g = np.random.default_rng(5)
    assert_cpu_gpu_parity(text(kind),
                          bottoms=[g.standard_normal((T, N, X)), CONT, g.standard_normal((N, S))],
                          propagate_down=[True, False, True])
