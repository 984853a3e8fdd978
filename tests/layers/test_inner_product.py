import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.layers.inner_product import accumulate_product
from dist_caffe.testing import assert_cpu_gpu_parity, check_gradient, make_layer, setup_layer

from .conftest import caffe_layer, check_against_caffe


def ip_text(num_output, extra=""):
    return (f"type: 'InnerProduct' inner_product_param {{ num_output: {num_output} {extra} "
            "weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }")


@pytest.mark.parametrize("extra, shape, top_shape", [
    ("", (4, 3, 2, 5), (4, 7)),
    ("axis: 2", (2, 3, 4, 5), (2, 3, 7)),
    ("axis: -1", (2, 3, 6), (2, 3, 7)),
    ("axis: 0", (3, 4), (7,)),
    ("transpose: true", (4, 6), (4, 7)),
    ("bias_term: false axis: 2 transpose: true", (2, 3, 4), (2, 3, 7)),
])
def test_inner_product_forward_matches_numpy(extra, shape, top_shape):
    x = np.random.default_rng(0).standard_normal(shape)
    layer = make_layer(ip_text(7, extra))
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    assert top[0].shape == top_shape
    m = int(np.prod(top_shape[:-1]))
    w = layer.blobs[0].data
    assert w.shape == ((x.size // m, 7) if "transpose" in extra else (7, x.size // m))
    expected = x.reshape(m, -1) @ (w if "transpose" in extra else w.T)
    if "bias_term: false" not in extra:
        expected = expected + layer.blobs[1].data
    else:
        assert len(layer.blobs) == 1
    np.testing.assert_allclose(top[0].data, expected.reshape(top_shape), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("extra, shape", [
    ("", (3, 2, 2, 2)),
    ("axis: 2", (2, 3, 4)),
    ("transpose: true", (3, 5)),
    ("bias_term: false axis: 0", (2, 3)),
    ("axis: -1 transpose: true", (2, 2, 3)),
])
def test_inner_product_gradient(extra, shape):
    check_gradient(make_layer(ip_text(4, extra)), bottom_shapes=[shape])


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("transpose", [False, True])
def test_inner_product_backward_matches_numpy_and_accumulates(transpose, dtype, tol):
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((5, 6)).astype(dtype), rng.standard_normal((5, 3)).astype(dtype)
    layer = make_layer(ip_text(3, "transpose: true" if transpose else ""), dtype=dtype)
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    top[0].diff[...] = dy
    weight_diff = layer.blobs[0].diff
    for _ in range(2):
        layer.backward(top, [True], bottom)
    assert layer.blobs[0].diff is weight_diff or np.shares_memory(layer.blobs[0].diff,
                                                                  weight_diff)
    w = layer.blobs[0].data.T if transpose else layer.blobs[0].data
    dw = 2 * (x.T @ dy if transpose else dy.T @ x)
    np.testing.assert_allclose(bottom[0].diff, dy @ w, rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.blobs[0].diff, dw, rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.blobs[1].diff, 2 * dy.sum(axis=0), rtol=tol, atol=tol)
    bottom[0].diff[...] = 9.0
    layer.backward(top, [False], bottom)
    np.testing.assert_array_equal(bottom[0].diff, 9.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accumulate_product_adds_in_place_for_any_operand_order(dtype):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((7, 5)).astype(dtype), rng.standard_normal((5, 9)).astype(dtype)
    for a_, b_ in ((a, b), (np.asfortranarray(a), b), (a, np.asfortranarray(b)),
                   (np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T)):
        c = rng.standard_normal((7, 9)).astype(dtype)
        want, where = c + a @ b, c.ctypes.data
        accumulate_product(a_, b_, c)
        assert c.ctypes.data == where
        np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5)


def test_inner_product_float32():
    x = np.random.default_rng(2).standard_normal((4, 10)).astype(np.float32)
    layer = make_layer(ip_text(3), dtype=np.float32)
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    assert top[0].data.dtype == np.float32
    w, b = layer.blobs[0].data.astype(np.float64), layer.blobs[1].data.astype(np.float64)
    np.testing.assert_allclose(top[0].data, x @ w.T + b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("text, shape, field", [
    (ip_text(3, "axis: 4"), (2, 3), "axis"),
    (ip_text(3, "axis: -3"), (2, 3), "axis"),
    ("type: 'InnerProduct' inner_product_param { }", (2, 3), "num_output"),
])
def test_inner_product_bad_config_names_field(text, shape, field):
    with pytest.raises(ConfigError, match=field) as info:
        setup_layer(make_layer(text), [np.zeros(shape)])
    assert "InnerProduct" in str(info.value)


def test_inner_product_input_size_may_not_change():
    layer = make_layer(ip_text(3))
    bottom, top = setup_layer(layer, [np.zeros((2, 4))])
    bottom[0].reshape(5, 4)   # another batch size is fine
    layer.reshape(bottom, top)
    assert top[0].shape == (5, 3)
    bottom[0].reshape(2, 5)
    with pytest.raises(ConfigError, match="bottom"):
        layer.reshape(bottom, top)


@pytest.mark.parametrize("case, name", [("layer_zoo_b", "ip_axis"), ("layer_zoo_b", "ip_flat"),
                                        ("layer_zoo_c", "ip_e")])
def test_inner_product_matches_bvlc_caffe(conformance, case, name):
    layer, ref = caffe_layer(conformance, case, name)
    check_against_caffe(layer, ref, name)


def test_inner_product_refuses_to_run_in_place():
    blob = Blob((2, 3, 4, 4), np.float64)
    with pytest.raises(ConfigError, match="in place"):
        make_layer(ip_text(3)).setup([blob], [blob])


@pytest.mark.gpu
@pytest.mark.skipif(not backend.has_gpu(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("extra", ["", "axis: 2 transpose: true"])
def test_inner_product_cpu_gpu_parity(extra):
    x = np.random.default_rng(8).standard_normal((3, 4, 6))
    assert_cpu_gpu_parity(ip_text(5, extra), bottoms=[x], rtol=1e-10, atol=1e-12)
