"""apply_update against an independent float64 numpy implementation of Caffe's solver step:
clip (global L2 norm) -> / iter_size -> weight decay x decay_mult (L2 or L1) -> rule with
rate x lr_mult. Gradients are set by hand, so only the update is under test."""
import numpy as np
import pytest

from .conftest import batches, feed_each_pass

COMMON = ('base_lr: 0.1 lr_policy: "step" gamma: 0.5 stepsize: 2 weight_decay: 0.01 '
          "iter_size: 2 clip_gradients: 3 ")
RULES = {
    "SGD": "momentum: 0.9",
    "Nesterov": "momentum: 0.9",
    "AdaGrad": "delta: 1e-6",
    "RMSProp": "rms_decay: 0.9 delta: 1e-6",
    "AdaDelta": "momentum: 0.95 delta: 1e-6",
    "Adam": "momentum: 0.9 momentum2: 0.99 delta: 1e-6",
}
MULTS = {"ip1": [(1, 2), (2, 0)], "ip2": [(0.5, 1), (1, 0)], "frozen": [(0, 1), (0, 1)]}


def reference_step(kind, p, ws, gs, hist, it):
    """One update of every param (lists of float64 arrays), in place; returns the rate."""
    rate = p["base_lr"] * 0.5 ** (it // 2)
    learn = [i for i, (lr, _) in enumerate(p["mults"]) if lr]
    norm = np.sqrt(sum((gs[i] ** 2).sum() for i in learn))
    scale = 3 / norm if norm > 3 else 1.0
    for i in learn:
        lr_mult, decay_mult = p["mults"][i]
        w, h = ws[i], hist[i]
        g = gs[i] * scale / 2
        g = g + 0.01 * decay_mult * (w if p["reg"] == "L2" else np.sign(w))
        lr = rate * lr_mult
        if kind == "SGD":
            h[0] = 0.9 * h[0] + lr * g
            step = h[0]
        elif kind == "Nesterov":
            old = h[0].copy()
            h[0] = 0.9 * h[0] + lr * g
            step = 1.9 * h[0] - 0.9 * old
        elif kind == "AdaGrad":
            h[0] = h[0] + g * g
            step = lr * g / (np.sqrt(h[0]) + 1e-6)
        elif kind == "RMSProp":
            h[0] = 0.9 * h[0] + 0.1 * g * g
            step = lr * g / (np.sqrt(h[0]) + 1e-6)
        elif kind == "AdaDelta":
            h[0] = 0.95 * h[0] + 0.05 * g * g
            u = g * np.sqrt((h[1] + 1e-6) / (h[0] + 1e-6))
            h[1] = 0.95 * h[1] + 0.05 * u * u
            step = lr * u
        else:
            h[0] = 0.9 * h[0] + 0.1 * g
            h[1] = 0.99 * h[1] + 0.01 * g * g
            t = it + 1
            step = lr * np.sqrt(1 - 0.99 ** t) / (1 - 0.9 ** t) * h[0] / (np.sqrt(h[1]) + 1e-6)
        w -= step
    return rate


@pytest.mark.parametrize("reg", ["L2", "L1"])
@pytest.mark.parametrize("kind", list(RULES))
def test_apply_update_matches_numpy(make_solver, kind, reg):
    solver = make_solver(f'type: "{kind}" {COMMON} {RULES[kind]} regularization_type: "{reg}"',
                         frozen=True)
    assert solver.type == kind
    blobs = [(name, i, b) for name, bs in solver.net.params.items() for i, b in enumerate(bs)]
    p = {"base_lr": 0.1, "reg": reg, "mults": [MULTS[name][i] for name, i, _ in blobs]}
    ws = [b.data.astype(np.float64) for _, _, b in blobs]
    hist = [[np.zeros(b.shape), np.zeros(b.shape)] for _, _, b in blobs]
    g = np.random.default_rng(1)
    for it in range(4):
        gs = [g.normal(size=b.shape) * (3 if it % 2 else 0.2) for _, _, b in blobs]  # clip on odd
        gs = [x if m[0] else np.zeros_like(x) for x, m in zip(gs, p["mults"])]       # as backward
        for (_, _, b), x in zip(blobs, gs):
            b.diff[...] = x
        rate = reference_step(kind, p, ws, [x.astype(np.float32).astype(np.float64) for x in gs],
                              hist, it)
        solver.iter = it
        solver.apply_update()
        assert solver.lr == pytest.approx(rate)
        for (name, i, b), w in zip(blobs, ws):
            np.testing.assert_allclose(b.data, w, rtol=2e-5, atol=2e-6, err_msg=f"{name}[{i}]")
    frozen = solver.net.params["frozen"][0]
    assert not frozen.diff.any() and not solver.history[:, -frozen.count - 3:].any()


def test_iter_size_equals_larger_batch(make_solver, tmp_path):
    """iter_size 2 with batch b == iter_size 1 with batch 2b (SGD, momentum, decay)."""
    text = 'type: "SGD" base_lr: 0.1 lr_policy: "fixed" momentum: 0.9 weight_decay: 0.01 '
    data = batches(6, n=4, seed=3)
    small = make_solver(text + "iter_size: 2", n=4)
    feed_each_pass(small, data)
    init = small.net.to_proto()
    big = make_solver(text + "iter_size: 1", n=8)
    big.net.copy_from(init)
    joined = [(np.concatenate([data[i][0], data[i + 1][0]]),
               np.concatenate([data[i][1], data[i + 1][1]])) for i in range(0, 6, 2)]
    feed_each_pass(big, joined)
    losses = []
    for _ in range(3):
        small.step(1)
        big.step(1)
        losses.append((small.smoothed_loss, big.smoothed_loss))
    for name in small.net.params:
        for a, b in zip(small.net.params[name], big.net.params[name]):
            np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-6)
    a, b = zip(*losses)
    np.testing.assert_allclose(a, b, rtol=1e-5)   # the displayed loss is the mean over passes
    assert not np.allclose(init.layer[1].blobs[0].data, small.net.params["ip1"][0].data.ravel())


@pytest.mark.parametrize("reg", ["L2", "L1"])
@pytest.mark.parametrize("kind", list(RULES))
def test_fused_kernel_path_matches_xp_path(make_solver, kind, reg):
    """kernels/solver_updates.cu (the GPU path), run through the g++ shim, takes the same
    steps as the numpy path, history included."""
    shim = pytest.importorskip("dist_caffe.testing.kernel_shim")
    text = f'type: "{kind}" {COMMON} {RULES[kind]} regularization_type: "{reg}"'
    plain, fused = make_solver(text, frozen=True), make_solver(text, frozen=True)
    launched = []

    class Spy:
        def call(self, filename, name, *args):
            launched.append(name)
            shim.SHIM.call(filename, name, *args)
    fused.kernel_library = Spy()
    g = np.random.default_rng(4)
    for it in range(3):
        diff = g.normal(size=plain.net.param_diff.size).astype(np.float32) * (3 if it else 0.2)
        diff[plain.net.learnable_count:] = 0
        for solver in (plain, fused):
            solver.iter = it
            solver.net.param_diff[...] = diff
            solver.apply_update()
    assert launched == [f"solver_updates_{kind.lower()}"] * 3
    np.testing.assert_allclose(fused.net.param_data, plain.net.param_data, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fused.history, plain.history, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(fused.net.param_diff, plain.net.param_diff, rtol=1e-4, atol=1e-9)


def test_per_element_rates_keep_the_xp_path(make_solver):
    solver = make_solver(f'type: "SGD" {COMMON} momentum: 0.9')
    solver.kernel_library = object()                 # would fail if it were used
    solver.param_rates = lambda rate: solver.lr_mult * np.float32(rate)   # e.g. LARS
    solver.net.param_diff[...] = 1
    solver.apply_update()


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("kind", list(RULES))
def test_grad_scale_folds_a_sum_over_replicas_into_the_update(make_solver, kind, fused):
    """A data-parallel reducer leaves the sum over N replicas and sets grad_scale = 1/N: the
    same steps as the mean with grad_scale 1, clipping (its norm is of the mean) and iter_size
    included, and a frozen param's own (unreduced) diff counted in the clipping norm as is."""
    text = f'type: "{kind}" {COMMON} {RULES[kind]}'
    mean, summed = make_solver(text, frozen=True), make_solver(text, frozen=True)
    if fused:
        shim = pytest.importorskip("dist_caffe.testing.kernel_shim")
        mean.kernel_library = summed.kernel_library = shim.SHIM
    summed.grad_scale = 1 / 4
    g = np.random.default_rng(5)
    n = mean.net.learnable_count
    for it in range(4):
        diff = g.normal(size=mean.net.param_diff.size).astype(np.float32) * (3 if it % 2 else 0.2)
        diff[n:] *= 0.5                         # frozen: force_backward-style local gradient
        for solver, factor in ((mean, 1), (summed, 4)):
            solver.iter = it
            solver.net.param_diff[...] = diff
            solver.net.param_diff[:n] *= factor
            solver.apply_update()
    np.testing.assert_allclose(summed.net.param_data, mean.net.param_data, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(summed.history, mean.history, rtol=1e-4, atol=1e-9)
