"""Every layer's forward_gpu/backward_gpu (the custom-kernel path) against its own forward/backward
(the xp reference), without a GPU: the g++ shim stands in for it (kernel_shim.shim_as_gpu), and
assert_gpu_override_matches compares tops, bottom diffs, blobs and blob diffs over two passes.
Cases run in float32 and float64 (the `dtype` fixture), in place wherever the layer allows it."""
import numpy as np
import pytest

from dist_caffe.errors import DataError
from dist_caffe.layer import TEST, TRAIN
from dist_caffe.testing import make_layer
from dist_caffe.testing.kernel_shim import assert_gpu_override_matches, shim_as_gpu
from dist_caffe.testing.gradient_check import setup_layer


def tolerances(dtype, scale=1.0):
    """float32 kernels differ from numpy in the last bits (other summation order, exp(x) - 1
    for expm1, FMA); float64 ones by rounding only."""
    if np.dtype(dtype) == np.float32:
        return dict(rtol=2e-5 * scale, atol=2e-6 * scale)
    return dict(rtol=1e-10 * scale, atol=1e-12 * scale)


def check(text, bottoms, dtype, phase=TRAIN, scale=1.0, **kw):
    """assert_gpu_override_matches for the layer `text` built in `dtype`; returns the kernels."""
    return assert_gpu_override_matches(lambda: make_layer(text, phase=phase, dtype=dtype),
                                       [np.asarray(b) for b in bottoms],
                                       **tolerances(dtype, scale), **kw)


def normal(shape, seed=0, std=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * std


# -- elementwise neurons ---------------------------------------------------------------------

def with_values(x, values):
    """x with its first elements replaced by `values` (kinks, bounds, exact ties)."""
    x = np.array(x, dtype=np.float64)
    x.reshape(-1)[:len(values)] = values
    return x


NEURONS = [
    # (layer text, bottom, kernel stem: neurons_<stem>_forward / _backward)
    ("type: 'ReLU'", with_values(normal((2, 3, 4, 5)), [0.0, -0.0]), "relu"),
    ("type: 'ReLU' relu_param { negative_slope: 0.3 }", normal((2, 3, 4, 5)), "relu"),
    ("type: 'Sigmoid'", normal((2, 3, 4), std=4), "sigmoid"),
    ("type: 'TanH'", normal((2, 3, 4), std=2), "tanh"),
    ("type: 'ELU' elu_param { alpha: 0.5 }", normal((2, 3, 4), std=2), "elu"),
    ("type: 'AbsVal'", with_values(normal((2, 3, 4)), [0.0]), "absval"),
    # BNLL: both tails (its backward caps exp at exp(50)) and the middle
    ("type: 'BNLL'", with_values(normal((3, 20), std=3), [-80, -40, -20, 45, 55, 90]),
     "bnll"),
    ("type: 'Power' power_param { power: 2.5 scale: 0.5 shift: 2.0 }",
     np.random.default_rng(1).uniform(-3, 3, (2, 3, 4)), "power"),
    ("type: 'Power' power_param { power: 2 scale: -1.5 shift: 0.25 }", normal((2, 3, 4)), "power"),
    ("type: 'Power' power_param { power: 1 scale: 3 shift: -1 }", normal((2, 3, 4)), "power"),
    ("type: 'Power' power_param { power: 0 scale: 2 shift: 3 }", normal((2, 3, 4)), "power"),
    ("type: 'Power' power_param { power: 3 scale: 0 shift: 2 }", normal((2, 3, 4)), "power"),
    ("type: 'Power' power_param { power: -0.5 scale: 1 shift: 4 }", normal((2, 3, 4)), "power"),
    ("type: 'Exp'", normal((2, 3, 4)), "exp"),
    ("type: 'Exp' exp_param { base: 2 scale: 0.5 shift: 0.1 }", normal((2, 3, 4)), "exp"),
    ("type: 'Log'", np.random.default_rng(2).uniform(0.1, 5, (2, 3, 4)), "log"),
    ("type: 'Log' log_param { base: 10 scale: 2 shift: 0.5 }",
     np.random.default_rng(3).uniform(-0.2, 5, (2, 3, 4)), "log"),
    # values exactly on the bounds get the gradient (min <= x <= max)
    ("type: 'Clip' clip_param { min: -0.5 max: 1.5 }", with_values(normal((2, 3, 4)), [-0.5, 1.5]),
     "clip"),
    ("type: 'Swish'", normal((2, 3, 4), std=3), "swish"),
    ("type: 'Swish' swish_param { beta: 1.5 }", normal((2, 3, 4), std=3), "swish"),
]


@pytest.mark.parametrize("in_place", [False, True], ids=["apart", "in_place"])
@pytest.mark.parametrize("text, x, stem", NEURONS, ids=[n[0][7:].strip() for n in NEURONS])
def test_neuron_overrides(dtype, text, x, stem, in_place):
    launched = check(text, [x], dtype, in_place=in_place)
    assert set(launched["forward"]) == {f"neurons_{stem}_forward"}
    assert set(launched["backward"]) == {f"neurons_{stem}_backward"}


@pytest.mark.parametrize("in_place", [False, True], ids=["apart", "in_place"])
def test_threshold_override(dtype, in_place):
    x = with_values(normal((2, 3, 4)), [0.2, 0.0, -0.2])   # exactly at the threshold: 0
    launched = check("type: 'Threshold' threshold_param { threshold: 0.2 }", [x], dtype,
                     in_place=in_place)
    assert launched == {"forward": ["neurons_threshold_forward"] * 2, "backward": []}


PRELU_CASES = [
    ("", (2, 3, 4, 5)),
    ("", (4, 3)),                                  # no spatial axes: dim 1
    ("prelu_param { channel_shared: true }", (2, 3, 4)),
    ("", (2, 1, 6)),                               # one channel, not shared
]


@pytest.mark.parametrize("in_place", [False, True], ids=["apart", "in_place"])
@pytest.mark.parametrize("param, shape", PRELU_CASES)
def test_prelu_override(dtype, param, shape, in_place):
    x = with_values(normal(shape), [0.0])
    shared = "channel_shared" in param
    slopes = np.random.default_rng(5).uniform(0.05, 0.9, () if shared else (shape[1],))
    launched = check(f"type: 'PReLU' {param}", [x], dtype, in_place=in_place, params=[slopes])
    assert set(launched["forward"]) == {"neurons_prelu_forward"}
    # the slope gradient (accumulated onto blobs[0].diff) and then dx
    assert launched["backward"] == ["neurons_prelu_slope_backward", "neurons_prelu_backward"] * 2


def test_prelu_override_slope_gradient_only(dtype):
    launched = check("type: 'PReLU'", [normal((2, 3, 4))], dtype, propagate_down=[False])
    assert set(launched["backward"]) == {"neurons_prelu_slope_backward"}


# -- softmax, softmax loss, accuracy ----------------------------------------------------------

@pytest.mark.parametrize("in_place", [False, True], ids=["apart", "in_place"])
@pytest.mark.parametrize("axis, shape", [(1, (2, 5, 3, 4)), (2, (2, 3, 5, 2)), (-1, (3, 7)),
                                         (0, (6, 2))])
def test_softmax_override(dtype, axis, shape, in_place):
    launched = check(f"type: 'Softmax' softmax_param {{ axis: {axis} }}", [normal(shape, std=3)],
                     dtype, in_place=in_place)
    assert set(launched["forward"]) == {"softmax_forward"}
    assert set(launched["backward"]) == {"softmax_backward"}


def scores_and_labels(shape, axis=1, seed=0, ignore=None):
    g = np.random.default_rng(seed)
    x = g.standard_normal(shape) * 2
    labels = g.integers(0, shape[axis], shape[:axis] + shape[axis + 1:]).astype(np.float64)
    if ignore is not None:
        labels.reshape(-1)[::3] = ignore
    return x, labels


SWL_CASES = [
    ("", (4, 5), 1, None),
    ("loss_param { ignore_label: 2 }", (3, 5, 2, 2), 1, 2),
    ("loss_param { ignore_label: -1 normalization: FULL }", (3, 5, 2, 2), 1, -1),
    ("loss_param { normalization: BATCH_SIZE }", (3, 5, 4), 1, None),
    ("loss_param { normalization: NONE ignore_label: 0 }", (3, 5, 4), 1, 0),
    ("loss_param { normalize: false }", (3, 5, 4), 1, None),
    ("softmax_param { axis: 2 }", (2, 3, 6, 2), 2, None),
]


@pytest.mark.parametrize("param, shape, axis, ignore", SWL_CASES,
                         ids=[c[0] or "plain" for c in SWL_CASES])
def test_softmax_with_loss_override(dtype, param, shape, axis, ignore):
    x, labels = scores_and_labels(shape, axis, ignore=ignore)
    text = f"type: 'SoftmaxWithLoss' top: 'loss' top: 'prob' {param}"
    launched = check(text, [x, labels], dtype, propagate_down=[True, False],
                     top_diffs=[np.array(0.7), np.zeros(shape)])
    assert set(launched["forward"]) == {"softmax_forward", "softmax_loss_forward"}
    assert set(launched["backward"]) == {"softmax_loss_backward"}


def test_softmax_with_loss_override_all_labels_ignored(dtype):
    x, labels = scores_and_labels((4, 3), ignore=1)
    labels[:] = 1
    check("type: 'SoftmaxWithLoss' loss_param { ignore_label: 1 }", [x, labels], dtype,
          propagate_down=[True, False])


def test_softmax_with_loss_override_without_backward_to_scores(dtype):
    x, labels = scores_and_labels((4, 3))
    launched = check("type: 'SoftmaxWithLoss'", [x, labels], dtype, propagate_down=[False, False])
    assert launched["backward"] == []


@pytest.mark.parametrize("text, bad", [
    ("type: 'SoftmaxWithLoss'", [7, -1]),
    ("type: 'SoftmaxWithLoss' loss_param { ignore_label: 9 }", [5, 3]),
    ("type: 'Accuracy'", [-2, 6]),
    ("type: 'Accuracy' accuracy_param { ignore_label: -2 }", [3, 11]),
])
def test_bad_labels_raise_the_xp_paths_error(text, bad):
    # Two labels out of [0, 3) at positions 1 and 4, an ignored one at 2. The kernel flags some
    # bad position (the shim: the last); the error names the first, as the xp path's does.
    x, labels = scores_and_labels((6, 3))
    labels[1], labels[4] = bad
    labels[2] = 9 if "ignore_label: 9" in text else -2 if "ignore_label: -2" in text else 0
    messages = []
    for gpu in (False, True):
        layer = make_layer(text)
        bottom, top = setup_layer(layer, [x, labels])
        with shim_as_gpu(), pytest.raises(DataError) as err:
            (layer.forward_gpu if gpu else layer.forward)(bottom, top)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert f"label {bad[0]:g} is out of range" in messages[1]


ACCURACY_CASES = [
    ("", (20, 5), 1, False, None),
    ("accuracy_param { top_k: 2 }", (20, 5), 1, True, None),      # ties: higher class first
    ("accuracy_param { top_k: 3 ignore_label: 4 }", (6, 5, 3), 1, True, 4),
    ("accuracy_param { axis: 2 top_k: 2 }", (3, 2, 6, 2), 2, True, None),
    ("accuracy_param { ignore_label: -1 }", (12, 4), 1, False, -1),
]


@pytest.mark.parametrize("param, shape, axis, ties, ignore", ACCURACY_CASES,
                         ids=[c[0] or "plain" for c in ACCURACY_CASES])
def test_accuracy_override(dtype, param, shape, axis, ties, ignore):
    x, labels = scores_and_labels(shape, axis, ignore=ignore)
    if ties:
        x = np.round(x / 2)          # few distinct scores: many exact ties
    launched = check(f"type: 'Accuracy' top: 'acc' top: 'per_class' {param}", [x, labels], dtype)
    assert launched == {"forward": ["accuracy_forward"] * 2, "backward": []}


# -- batch norm -------------------------------------------------------------------------------

@pytest.mark.parametrize("in_place", [False, True], ids=["apart", "in_place"])
@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (6, 4), (2, 3, 1, 7)])
def test_batch_norm_override_batch_statistics(dtype, shape, in_place):
    # Two passes: the second starts from the running sums the first updated.
    x = normal(shape, std=2) + 3
    launched = check("type: 'BatchNorm' batch_norm_param { moving_average_fraction: 0.9 }", [x],
                     dtype, in_place=in_place, scale=5)
    assert set(launched["forward"]) == {"batch_norm_mean_var", "batch_norm_normalize"}
    assert set(launched["backward"]) == {"batch_norm_backward_stats", "batch_norm_backward"}


@pytest.mark.parametrize("weight", [0.0, 2.5], ids=["no_statistics_yet", "statistics"])
@pytest.mark.parametrize("in_place", [False, True], ids=["apart", "in_place"])
def test_batch_norm_override_global_statistics(dtype, weight, in_place):
    g = np.random.default_rng(7)
    params = [g.standard_normal(3) * weight, g.uniform(0.5, 2, 3) * weight, np.array([weight])]
    launched = check("type: 'BatchNorm'", [normal((4, 3, 2, 5))], dtype, phase=TEST,
                     in_place=in_place, params=params)
    assert set(launched["forward"]) == {"batch_norm_normalize"}
    assert set(launched["backward"]) == {"batch_norm_backward"}


# -- eltwise ----------------------------------------------------------------------------------

ELTWISE = [
    ("operation: SUM", 2), ("operation: SUM coeff: 2 coeff: -1 coeff: 0.5", 3),
    ("operation: PROD", 3), ("operation: PROD stable_prod_grad: false", 3),
    ("operation: PROD", 2), ("operation: MAX", 2), ("operation: MAX", 4),
]


@pytest.mark.parametrize("in_place", [False, True], ids=["apart", "in_place"])
@pytest.mark.parametrize("body, k", ELTWISE, ids=[f"{b} x{k}" for b, k in ELTWISE])
def test_eltwise_override(dtype, body, k, in_place):
    g = np.random.default_rng(k)
    if "MAX" in body:   # small integers: exact ties between bottoms, resolved as the xp path does
        xs = [g.integers(-2, 3, (2, 3, 4)).astype(np.float64) for _ in range(k)]
    else:
        xs = [g.uniform(0.5, 1.5, (2, 3, 4)) * g.choice([-1, 1], (2, 3, 4)) for _ in range(k)]
    launched = check(f"type: 'Eltwise' eltwise_param {{ {body} }}", xs, dtype, in_place=in_place)
    op = body.split()[1].lower()
    assert set(launched["forward"]) == {f"eltwise_{op}_forward"}
    assert launched["backward"]


def test_eltwise_override_partial_propagate_down(dtype):
    xs = [normal((3, 4), seed=s) for s in range(3)]
    for body in ("operation: SUM coeff: 1 coeff: 2 coeff: 3", "operation: PROD", "operation: MAX"):
        check(f"type: 'Eltwise' eltwise_param {{ {body} }}", xs, dtype,
              propagate_down=[False, True, False])


# -- vision: pooling, LRN, convolution (im2col/col2im kernels) ------------------------------

POOLS = [
    ("pool: MAX kernel_size: 3 stride: 2", (2, 3, 7, 7)),              # ceil-mode overhang
    ("pool: MAX kernel_size: 3 stride: 2 pad: 1", (2, 2, 6, 5)),
    ("pool: AVE kernel_size: 3 stride: 2 pad: 1", (2, 3, 7, 6)),       # divisor counts padding
    ("pool: AVE kernel_h: 2 kernel_w: 3 stride_h: 1 stride_w: 2", (1, 2, 5, 7)),
]


@pytest.mark.parametrize("params, shape", POOLS)
def test_pooling_override(params, shape, dtype):
    launched = check(f"type: 'Pooling' pooling_param {{ {params} }}", [normal(shape)], dtype)
    method = "max" if "MAX" in params else "ave"
    assert set(launched["forward"]) == {f"pooling_{method}_forward"}


def test_lrn_override(dtype):
    text = "type: 'LRN' lrn_param { local_size: 5 alpha: 0.3 beta: 0.75 k: 2 }"
    launched = check(text, [normal((2, 7, 3, 4))], dtype)
    assert set(launched["backward"]) == {"lrn_compute_diff"}


def _conv_pass(text, x, dtype):
    layer = make_layer(text, dtype=dtype)
    bottom, top = setup_layer(layer, [x], seed=3)
    layer.forward(bottom, top)
    top[0].diff[...] = normal(top[0].shape, seed=1)
    layer.backward(top, [True], bottom)
    return [top[0].data.copy(), bottom[0].diff.copy()] + [b.diff.copy() for b in layer.blobs]


@pytest.mark.parametrize("params, shape", [
    ("num_output: 4 kernel_size: 3 pad: 1", (2, 3, 6, 6)),
    ("num_output: 4 kernel_size: 3 stride: 2 dilation: 2 group: 2", (2, 4, 9, 8)),
    ("num_output: 6 kernel_h: 2 kernel_w: 3 pad_w: 1", (3, 2, 40, 33)),   # wide output: Caffe order
])
def test_convolution_on_the_im2col_kernels(params, shape, dtype, monkeypatch):
    """Convolution's GPU path is its own code over im2col/col2im, which switch to the kernels
    for device arrays: with the shim standing in, the results must not change."""
    text = (f"type: 'Convolution' convolution_param {{ {params} "
            "weight_filler { type: 'gaussian' std: 0.3 } bias_filler { type: 'gaussian' } }")
    x = normal(shape)
    want = _conv_pass(text, x, dtype)
    from dist_caffe import im2col
    monkeypatch.setattr(im2col.backend, "is_gpu_array", lambda a: True)
    with shim_as_gpu() as launched:
        got = _conv_pass(text, x, dtype)
    assert "im2col_im2col" in launched and "im2col_col2im" in launched
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, **tolerances(dtype, 10))
