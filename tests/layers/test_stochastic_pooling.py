"""STOCHASTIC pooling: value-proportional sampling in TRAIN, weighted mean in TEST."""
import numpy as np
import pytest
from google.protobuf import text_format

from dist_caffe import TEST, TRAIN, rng
from dist_caffe.errors import ConfigError
from dist_caffe.layer import create_layer
from dist_caffe.layers.stochastic_pooling import StochasticPoolingLayer, make_pooling_layer
from dist_caffe.proto import caffe_pb2
from dist_caffe.testing import assert_cpu_gpu_parity, check_gradient, setup_layer

TEXT = "name: 'sto' type: 'Pooling' pooling_param { pool: STOCHASTIC kernel_size: 3 stride: 2 }"


def stochastic(phase, text=TEXT):
    return make_pooling_layer(text_format.Parse(text, caffe_pb2.LayerParameter()), phase, np.float64)


def positive(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 1.0, shape)


def test_make_pooling_layer_picks_the_stochastic_class():
    assert isinstance(stochastic(TRAIN), StochasticPoolingLayer)
    max_param = text_format.Parse("type: 'Pooling' pooling_param { kernel_size: 2 }", caffe_pb2.LayerParameter())
    assert not isinstance(make_pooling_layer(max_param), StochasticPoolingLayer)


def test_stochastic_train_picks_window_cells_in_proportion_to_value():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0] = [[1, 0, 0], [0, 3, 0], [0, 0, 6]]   # one 3x3 window: picks 1, 3, 6 w.p. 0.1, 0.3, 0.6
    layer = stochastic(TRAIN)
    bottom, top = setup_layer(layer, [x])
    rng.set_random_seed(0)
    picks = []
    for _ in range(4000):
        layer.forward(bottom, top)
        picks.append(float(top[0].data.ravel()[0]))
    freq = {v: picks.count(v) / len(picks) for v in (1.0, 3.0, 6.0)}
    assert set(picks) == {1.0, 3.0, 6.0}
    np.testing.assert_allclose([freq[1.0], freq[3.0], freq[6.0]], [0.1, 0.3, 0.6], atol=0.03)


def test_stochastic_train_output_is_a_cell_of_its_window():
    x = positive((2, 3, 7, 6))
    layer = stochastic(TRAIN)
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    y = top[0].data
    assert y.shape == (2, 3, 3, 3)   # ceil((7 - 3) / 2) + 1, ceil((6 - 3) / 2) + 1
    for i in range(3):
        for j in range(3):
            window = x[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].reshape(2, 3, -1)
            assert np.all(np.any(window == y[:, :, i, j, None], axis=-1))


def test_stochastic_test_phase_is_the_weighted_mean():
    x = positive((2, 3, 7, 6), seed=1)
    layer = stochastic(TEST)
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    for i in range(3):
        for j in range(3):
            window = x[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].reshape(2, 3, -1)
            np.testing.assert_allclose(top[0].data[:, :, i, j],
                                       (window ** 2).sum(-1) / window.sum(-1), rtol=1e-12)


@pytest.mark.parametrize("phase", [TRAIN, TEST])
@pytest.mark.parametrize("text", [TEXT, TEXT.replace("kernel_size: 3 stride: 2", "kernel_h: 2 kernel_w: 3 stride: 1"),
                                  "name: 'g' type: 'Pooling' pooling_param { pool: STOCHASTIC global_pooling: true }"])
def test_stochastic_gradient(phase, text):
    check_gradient(stochastic(phase, text), bottoms=[positive((2, 2, 5, 6), seed=2)])


def test_stochastic_bad_config_names_field():
    with pytest.raises(ConfigError, match="pad"):
        setup_layer(stochastic(TRAIN, TEXT.replace("stride: 2", "stride: 2 pad: 1")), [positive((1, 1, 5, 5))])
    with pytest.raises(ConfigError, match="top"):
        setup_layer(stochastic(TRAIN), [positive((1, 1, 5, 5))], num_top=2)


def test_pooling_type_dispatches_stochastic():
    layer = create_layer(text_format.Parse(TEXT, caffe_pb2.LayerParameter()), TRAIN, np.float64)
    assert isinstance(layer, StochasticPoolingLayer)


@pytest.mark.gpu
@pytest.mark.parametrize("phase", [TRAIN, TEST])
def test_stochastic_cpu_gpu_parity(phase):
    # The draws come from the host generator, seeded alike before each forward.
    assert_cpu_gpu_parity(lambda: stochastic(phase), bottoms=[positive((2, 3, 7, 6), seed=3)],
                          seed=5)
