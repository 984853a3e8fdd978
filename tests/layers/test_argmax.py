"""ArgMax: top_k indices (and values), forward only."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import assert_cpu_gpu_parity, make_layer, run_layer, setup_layer


def reference(x, k, out_max_val, axis=None):
    """Independent reference: rank (value, index) pairs in descending order, as Caffe does."""
    if axis is None:
        flat = x.reshape(x.shape[0], -1)
        out = np.zeros((x.shape[0], 2 if out_max_val else 1, k))
        for n, row in enumerate(flat):
            ranked = sorted(((v, i) for i, v in enumerate(row)), reverse=True)[:k]
            out[n, 0] = [i for _, i in ranked]
            if out_max_val:
                out[n, 1] = [v for v, _ in ranked]
        return out
    moved = np.moveaxis(x, axis, -1)
    out = np.zeros(moved.shape[:-1] + (k,))
    for idx in np.ndindex(moved.shape[:-1]):
        ranked = sorted(((v, i) for i, v in enumerate(moved[idx])), reverse=True)[:k]
        out[idx] = [v if out_max_val else i for v, i in ranked]
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("k, out_max_val", [(1, False), (3, False), (2, True)])
def test_argmax_without_axis_matches_reference(k, out_max_val):
    x = np.random.default_rng(0).integers(0, 4, (3, 2, 5)).astype(float)  # many ties
    text = f"type: 'ArgMax' argmax_param {{ top_k: {k} out_max_val: {str(out_max_val).lower()} }}"
    (y,) = run_layer(make_layer(text), [x])
    assert y.shape == (3, 2 if out_max_val else 1, k)
    np.testing.assert_array_equal(y, reference(x, k, out_max_val))


def test_argmax_pads_a_4d_input_to_caffes_shape():
    (y,) = run_layer(make_layer("type: 'ArgMax'"), [np.random.default_rng(1).standard_normal((2, 3, 4, 5))])
    assert y.shape == (2, 1, 1, 1)


@pytest.mark.parametrize("axis, k, out_max_val", [(1, 1, False), (2, 2, False), (-1, 2, True), (0, 1, True)])
def test_argmax_with_axis_matches_reference(axis, k, out_max_val):
    x = np.random.default_rng(2).integers(0, 3, (2, 3, 4)).astype(float)
    text = (f"type: 'ArgMax' argmax_param {{ axis: {axis} top_k: {k} "
            f"out_max_val: {str(out_max_val).lower()} }}")
    (y,) = run_layer(make_layer(text), [x])
    np.testing.assert_array_equal(y, reference(x, k, out_max_val, axis % 3))


def test_argmax_is_forward_only():
    assert make_layer("type: 'ArgMax'").has_backward is False


@pytest.mark.parametrize("text, field", [("argmax_param { top_k: 7 }", "argmax_param.top_k"),
                                         ("argmax_param { axis: 1 top_k: 4 }", "argmax_param.top_k"),
                                         ("argmax_param { axis: 3 }", "argmax_param.axis")])
def test_argmax_bad_config_names_field(text, field):
    with pytest.raises(ConfigError, match=field):
        setup_layer(make_layer(f"type: 'ArgMax' {text}"), [np.ones((2, 3, 2))])


@pytest.mark.gpu
def test_argmax_cpu_gpu_parity():
    x = np.random.default_rng(3).integers(0, 4, (3, 2, 5)).astype(float)
    text = "type: 'ArgMax' argmax_param { top_k: 3 out_max_val: true }"
    assert_cpu_gpu_parity(text, bottoms=[x], rtol=0, atol=0)
