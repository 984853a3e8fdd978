"""kernels/neurons.cu against numpy: forward formulas, and backward against central
differences of those formulas (elementwise, so one vectorised difference per case)."""
import math

import numpy as np
import pytest

from .conftest import tol

F = "neurons.cu"


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name: (forward params, numpy forward(x), backward inputs, backward params, sample x)
def uniform(lo, hi):
    return lambda rng, n: rng.uniform(lo, hi, n)


def away_from(kinks, lo=-3, hi=3):
    """Samples at least 1e-3 away from each kink, where differences are meaningless."""
    def sample(rng, n):
        x = rng.uniform(lo, hi, n)
        for k in kinks:
            close = np.abs(x - k) < 1e-3
            x[close] = k + 2e-3
        return x
    return sample


NEURONS = {
    "relu": ([0.0], lambda x: np.maximum(x, 0), "x dy", [0.0], away_from([0])),
    "leaky_relu": ([0.3], lambda x: np.where(x > 0, x, 0.3 * x), "x dy", [0.3], away_from([0])),
    "elu": ([0.7], lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1)), "x y dy", [0.7], away_from([0])),
    "sigmoid": ([], sigmoid, "y dy", [], uniform(-8, 8)),
    "tanh": ([], np.tanh, "y dy", [], uniform(-4, 4)),
    "absval": ([], np.abs, "x dy", [], away_from([0])),
    "bnll": ([], lambda x: np.log1p(np.exp(x)), "x dy", [], uniform(-20, 20)),
    "power": ([2.5, 0.5, 2.0], lambda x: (2.0 + 0.5 * x) ** 2.5, "x dy", [2.5, 0.5, 2.0], uniform(-3, 3)),
    "power_square": ([2.0, -1.5, 0.25], lambda x: (0.25 - 1.5 * x) ** 2, "x dy", [2.0, -1.5, 0.25],
                     uniform(-3, 3)),
    "power_linear": ([1.0, 3.0, -1.0], lambda x: 3.0 * x - 1.0, "x dy", [1.0, 3.0, -1.0], uniform(-3, 3)),
    "power_zero": ([0.0, 2.0, 3.0], lambda x: np.ones_like(x), "x dy", [0.0, 2.0, 3.0], uniform(-3, 3)),
    # base 2, scale 0.5, shift 1: y = 2^(1 + x/2) = 2 * exp(ln2/2 x)
    "exp": ([math.log(2) * 0.5, 2.0], lambda x: 2.0 ** (1 + 0.5 * x), "y dy", [math.log(2) * 0.5],
            uniform(-5, 5)),
    # base 10, scale 2, shift 3: y = log10(3 + 2x)
    "log": ([2.0, 3.0, 1 / math.log(10)], lambda x: np.log10(3 + 2 * x), "x dy",
            [2.0, 3.0, 1 / math.log(10)], uniform(-1.4, 5)),
    "clip": ([-0.5, 1.5], lambda x: np.clip(x, -0.5, 1.5), "x dy", [-0.5, 1.5], away_from([-0.5, 1.5])),
    "swish": ([1.3], lambda x: x * sigmoid(1.3 * x), "x dy", [1.3], uniform(-6, 6)),
}
KERNEL = {"leaky_relu": "relu", "power_square": "power", "power_linear": "power",
          "power_zero": "power"}
SIZES = [1, 13, 4099]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("neuron", sorted(NEURONS))
def test_forward(dev, dtype, neuron, n):
    fwd_params, f, _, _, sample = NEURONS[neuron]
    x = sample(np.random.default_rng(n), n).astype(dtype)
    y, = dev.run(F, f"neurons_{KERNEL.get(neuron, neuron)}_forward", n, x, np.zeros(n, dtype),
                 *fwd_params)[1:]
    np.testing.assert_allclose(y, f(x.astype(np.float64)), **tol(dtype, 4))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("neuron", sorted(NEURONS))
def test_backward_matches_differences(dev, dtype, neuron, n):
    _, f, inputs, bwd_params, sample = NEURONS[neuron]
    rng = np.random.default_rng(n + 1)
    x64 = sample(rng, n)
    dy64 = rng.uniform(-1, 1, n)
    step = 1e-6
    expected = (f(x64 + step) - f(x64 - step)) / (2 * step) * dy64
    x, dy = x64.astype(dtype), dy64.astype(dtype)
    values = {"x": x, "y": f(x64).astype(dtype), "dy": dy}
    args = [values[k] for k in inputs.split()] + [np.full(n, np.nan, dtype)] + bwd_params
    dx = dev.run(F, f"neurons_{KERNEL.get(neuron, neuron)}_backward", n, *args)[-1]
    t = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx, expected, **t)


def test_bnll_is_stable_for_large_inputs(dev):
    x = np.array([-100, -30, 0, 30, 100], np.float32)
    y, = dev.run(F, "neurons_bnll_forward_f", 5, x, np.zeros(5, np.float32))[1:]
    np.testing.assert_allclose(y, np.logaddexp(0, x.astype(np.float64)), rtol=1e-6, atol=1e-30)
    dx, = dev.run(F, "neurons_bnll_backward_f", 5, x, np.ones(5, np.float32), np.zeros(5, np.float32))[2:]
    np.testing.assert_allclose(dx, sigmoid(x.astype(np.float64)), rtol=1e-6, atol=1e-30)


def test_relu_in_place(dev):
    x = np.array([-2, -1, 0, 1, 2], np.float32)
    d = dev.put(x)
    dev.lib.call(F, "neurons_relu_forward", 5, d, d, 0.5)
    np.testing.assert_array_equal(dev.get(d), [-1, -0.5, 0, 1, 2])


@pytest.mark.parametrize("threshold", [0.0, 0.25])
def test_threshold(dev, dtype, threshold):
    x = np.array([-1, 0, 0.25, 0.2500001, 3], dtype)
    y, = dev.run(F, "neurons_threshold_forward", 5, x, np.zeros(5, dtype), threshold)[1:]
    np.testing.assert_array_equal(y, (x > dtype.type(threshold)).astype(dtype))


@pytest.mark.parametrize("num,channels,dim", [(1, 1, 1), (2, 3, 5), (3, 4, 1), (2, 17, 33)])
@pytest.mark.parametrize("shared", [False, True])
def test_prelu(dev, dtype, num, channels, dim, shared):
    rng = np.random.default_rng(channels * dim)
    x = rng.uniform(-2, 2, (num, channels, dim))
    x[np.abs(x) < 1e-3] = 0.5
    slopes = rng.uniform(0.05, 0.9, 1 if shared else channels)
    s = np.broadcast_to(slopes.reshape(1, -1, 1), (1, channels, 1))
    n = x.size
    div = channels if shared else 1
    x_, sl = x.astype(dtype), slopes.astype(dtype)
    y, = dev.run(F, "neurons_prelu_forward", n, x_, sl, np.zeros(n, dtype), channels, dim, div)[2:]
    np.testing.assert_allclose(y.reshape(x.shape), np.where(x > 0, x, x * s), **tol(dtype))

    dy = rng.uniform(-1, 1, x.shape)
    dx, = dev.run(F, "neurons_prelu_backward", n, x_, dy.astype(dtype), sl, np.zeros(n, dtype),
                  channels, dim, div)[3:]
    np.testing.assert_allclose(dx.reshape(x.shape), dy * np.where(x > 0, 1, s), **tol(dtype))

    # d loss / d slope by differences of the forward, added to what the diff already held
    def forward(sv):
        return np.where(x > 0, x, x * np.broadcast_to(sv.reshape(1, -1, 1), (1, channels, 1)))
    step, expected = 1e-6, np.zeros_like(slopes)
    for c in range(slopes.size):
        e = np.zeros_like(slopes)
        e[c] = step
        expected[c] = np.sum((forward(slopes + e) - forward(slopes - e)) * dy) / (2 * step)
    held = np.linspace(1, 2, slopes.size).astype(dtype)
    dslope, = dev.run(F, "neurons_prelu_slope_backward", slopes.size, x_, dy.astype(dtype), held,
                      num, channels, dim)[2:]
    np.testing.assert_allclose(dslope, held + expected, **tol(dtype, 50))
