"""kernels/solver_updates.cu against Caffe's update rules (caffe_ref/NOTES.md) written per
parameter blob in float64: normalise/clip, weight decay (L2 or L1) times decay_mult, the
rule with rate times lr_mult, w -= update, diff = update. Several steps, so the history
terms are exercised."""
import math

import numpy as np
import pytest

F = "solver_updates.cu"

# per blob: (count, lr_mult, decay_mult); an empty blob and a frozen one included
BLOBS = [(7, 1.0, 1.0), (0, 1.0, 1.0), (13, 2.0, 0.0), (1, 0.5, 2.0), (300, 1.0, 1.0), (5, 0.0, 1.0)]


def segments(blobs):
    offsets = np.cumsum([0] + [c for c, _, _ in blobs]).astype(np.int32)
    return offsets, np.array([b[1] for b in blobs]), np.array([b[2] for b in blobs])


def reference_step(kind, w, diff, hist, rate, hp, grad_scale, weight_decay, l1, blobs):
    """One Caffe update, blob by blob; returns (w, diff, hist) new arrays."""
    w, diff, hist = w.copy(), diff.copy(), [h.copy() for h in hist]
    start = 0
    for count, lr_mult, decay_mult in blobs:
        s = slice(start, start + count)
        start += count
        g = diff[s] * grad_scale
        decay = weight_decay * decay_mult
        if decay:
            g = g + decay * (np.sign(w[s]) if l1 else w[s])
        lr = rate * lr_mult
        h = [x[s] for x in hist]
        if kind == "sgd":
            h[0][...] = hp["momentum"] * h[0] + lr * g
            u = h[0].copy()
        elif kind == "nesterov":
            old = h[0].copy()
            h[0][...] = hp["momentum"] * old + lr * g
            u = (1 + hp["momentum"]) * h[0] - hp["momentum"] * old
        elif kind == "adagrad":
            h[0][...] = h[0] + g * g
            u = lr * g / (np.sqrt(h[0]) + hp["delta"])
        elif kind == "rmsprop":
            h[0][...] = hp["rms_decay"] * h[0] + (1 - hp["rms_decay"]) * g * g
            u = lr * g / (np.sqrt(h[0]) + hp["delta"])
        elif kind == "adadelta":
            m, d = hp["momentum"], hp["delta"]
            h[0][...] = m * h[0] + (1 - m) * g * g
            step = g * np.sqrt((h[1] + d) / (h[0] + d))
            h[1][...] = m * h[1] + (1 - m) * step * step
            u = lr * step
        elif kind == "adam":
            b1, b2 = hp["beta1"], hp["beta2"]
            h[0][...] = b1 * h[0] + (1 - b1) * g
            h[1][...] = b2 * h[1] + (1 - b2) * g * g
            u = lr * h[0] / (np.sqrt(h[1]) + hp["eps"])
        diff[s] = u
        w[s] -= u
    return w, diff, hist


RULES = {  # kind: (hyper-parameters, kernel scalars after rate, history buffers)
    "sgd": ({"momentum": 0.9}, ["momentum"], 1),
    "nesterov": ({"momentum": 0.95}, ["momentum"], 1),
    "adagrad": ({"delta": 1e-8}, ["delta"], 1),
    "rmsprop": ({"rms_decay": 0.98, "delta": 1e-8}, ["rms_decay", "delta"], 1),
    "adadelta": ({"momentum": 0.95, "delta": 1e-6}, ["momentum", "delta"], 2),
    "adam": ({"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, ["beta1", "beta2", "eps"], 2),
}


@pytest.mark.parametrize("l1", [0, 1])
@pytest.mark.parametrize("grad_scale", [1.0, 0.25])
@pytest.mark.parametrize("kind", sorted(RULES))
def test_update(dev, dtype, kind, grad_scale, l1):
    hp, names, nhist = RULES[kind]
    offsets, lr, decay = segments(BLOBS)
    n = int(offsets[-1])
    rng = np.random.default_rng(len(kind) + l1)
    w = rng.standard_normal(n)
    hist = [np.zeros(n) for _ in range(nhist)]
    dev_w, dev_hist = dev.put(w.astype(dtype)), [dev.put(h.astype(dtype)) for h in hist]
    base_lr, weight_decay = 0.01, 5e-4
    for it in range(3):
        diff = rng.standard_normal(n)
        rate = base_lr
        if kind == "adam":  # the bias correction is folded into the rate, t = iter + 1
            t = it + 1
            rate = base_lr * math.sqrt(1 - hp["beta2"] ** t) / (1 - hp["beta1"] ** t)
        w, expected_diff, hist = reference_step(kind, w, diff, hist, rate, hp, grad_scale,
                                                weight_decay, l1, BLOBS)
        dev_diff = dev.put(diff.astype(dtype))
        dev.lib.call(F, f"solver_updates_{kind}", n, dev_w, dev_diff, *dev_hist, rate,
                     *[hp[k] for k in names], grad_scale, weight_decay, l1, len(BLOBS),
                     dev.put(offsets), dev.put(lr.astype(dtype)), dev.put(decay.astype(dtype)))
    t = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dev.get(dev_w), w, **t)
    np.testing.assert_allclose(dev.get(dev_diff), expected_diff, **t)
    for got, want in zip(dev_hist, hist):
        np.testing.assert_allclose(dev.get(got), want, **t)
    frozen = slice(int(offsets[-2]), n)  # lr_mult 0: every rule leaves it alone
    assert np.all(dev.get(dev_diff)[frozen] == 0)


def test_segment_lookup_covers_every_element(dev):
    """A plain SGD step with lr_mult = segment number shows which segment each element used."""
    counts = [3, 0, 0, 1, 5, 0, 2]
    offsets = np.cumsum([0] + counts).astype(np.int32)
    n = int(offsets[-1])
    lr = np.arange(len(counts), dtype=np.float64)
    w = np.zeros(n)
    w, diff = dev.run(F, "solver_updates_sgd", n, w, np.ones(n), np.zeros(n), 1.0, 0.0, 1.0, 0.0, 0,
                      len(counts), offsets, lr, np.zeros(len(counts)))[:2]
    np.testing.assert_array_equal(diff, np.repeat(lr, counts))
    np.testing.assert_array_equal(w, -np.repeat(lr, counts))
