"""Embed: learned lookup table."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError, DataError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


TEXT = ("type: 'Embed' embed_param { num_output: 4 input_dim: 6 weight_filler { type: 'gaussian' } "
        "bias_filler { type: 'gaussian' } }")
IDX = np.array([[0.0, 5.0, 2.0], [2.0, 2.0, 1.0]])


def test_embed_forward_matches_numpy():
    layer = make_layer(TEXT)
    (y,) = run_layer(layer, [IDX])
    w, b = layer.blobs[0].data, layer.blobs[1].data
    assert layer.blobs[0].shape == (6, 4) and y.shape == (2, 3, 4)
    np.testing.assert_array_equal(y, w[IDX.astype(int)] + b)


def test_embed_without_bias_has_one_blob():
    layer = make_layer("type: 'Embed' embed_param { num_output: 2 input_dim: 3 bias_term: false }")
    (y,) = run_layer(layer, [np.array([2.0, 0.0])])
    assert len(layer.blobs) == 1 and y.shape == (2, 2)


@pytest.mark.parametrize("bias", ["true", "false"])
def test_embed_gradient_of_weights(bias):
    text = TEXT.replace("input_dim: 6", f"input_dim: 6 bias_term: {bias}")
    check_gradient(make_layer(text), bottoms=[IDX], check_bottom=[])


def test_embed_repeated_indices_sum_their_gradients():
    layer = make_layer(TEXT)
    bottom, top = setup_layer(layer, [IDX])
    layer.forward(bottom, top)
    dy = np.random.default_rng(1).standard_normal(top[0].shape)
    top[0].diff[...] = dy
    layer.backward(top, [False], bottom)
    expected = np.zeros((6, 4))
    for n, i in np.ndenumerate(IDX.astype(int)):
        expected[i] += dy[n]
    np.testing.assert_allclose(layer.blobs[0].diff, expected)
    np.testing.assert_allclose(layer.blobs[1].diff, dy.reshape(-1, 4).sum(0))


def test_embed_out_of_range_index_is_a_data_error():
    with pytest.raises(DataError, match="6"):
        run_layer(make_layer(TEXT), [np.array([1.0, 6.0])])


def test_embed_bad_config_names_field():
    with pytest.raises(ConfigError, match="embed_param.input_dim"):
        setup_layer(make_layer("type: 'Embed' embed_param { num_output: 3 }"), [IDX])
    layer = make_layer(TEXT)
    bottom, top = setup_layer(layer, [IDX])
    layer.forward(bottom, top)
    with pytest.raises(ConfigError, match="propagate_down"):
        layer.backward(top, [True], bottom)


@pytest.mark.gpu
def test_embed_cpu_gpu_parity():
    assert_cpu_gpu_parity(TEXT, bottoms=[IDX], propagate_down=[False])
