"""MemoryData: batches from arrays set from Python."""
import numpy as np
import pytest

from dist_caffe import TRAIN, Net, backend
from dist_caffe.errors import ConfigError, DataError
from dist_caffe.testing import make_layer, setup_layer

TEXT = "type: 'MemoryData' memory_data_param { batch_size: 2 channels: 3 height: 2 width: 2 }"


def arrays(n=6):
    data = np.arange(n * 12, dtype=np.float32).reshape(n, 3, 2, 2)
    return data, np.arange(n, dtype=np.float32)


def test_memory_data_serves_batches_in_turn_and_wraps():
    layer = make_layer(TEXT)
    bottom, top = setup_layer(layer, [], num_top=2)
    assert top[0].shape == (2, 3, 2, 2) and top[1].shape == (2,)
    data, labels = arrays()
    layer.set_input_arrays(data, labels[:, None, None, None])
    seen = []
    for _ in range(4):
        layer.forward(bottom, top)
        np.testing.assert_array_equal(top[0].data, data[top[1].data.astype(int)])
        seen.extend(top[1].data.tolist())
    assert seen == [0, 1, 2, 3, 4, 5, 0, 1]


def test_memory_data_in_a_net():
    net = Net(f"layer {{ name: 'm' {TEXT} top: 'data' top: 'label' }}", TRAIN)
    data, labels = arrays(4)
    net.layers[0].set_input_arrays(data, labels)
    out = net.forward()
    np.testing.assert_array_equal(out["data"], data[:2])
    np.testing.assert_array_equal(out["label"], labels[:2])


def test_memory_data_without_arrays_is_a_data_error():
    layer = make_layer(TEXT)
    bottom, top = setup_layer(layer, [], num_top=2)
    with pytest.raises(DataError, match="set_input_arrays"):
        layer.forward(bottom, top)


@pytest.mark.parametrize("data, labels, match", [
    (np.zeros((6, 3, 2, 3)), np.zeros(6), "data must be"),
    (np.zeros((6, 3, 2, 2)), np.zeros(4), "same first dimension"),
    (np.zeros((5, 3, 2, 2)), np.zeros(5), "multiple of batch_size"),
    (np.zeros((6, 3, 2, 2)), np.zeros((6, 2)), "labels must be"),
])
def test_memory_data_bad_arrays(data, labels, match):
    layer = make_layer(TEXT)
    setup_layer(layer, [], num_top=2)
    with pytest.raises(ConfigError, match=match):
        layer.set_input_arrays(data, labels)


def test_memory_data_bad_config_names_field():
    with pytest.raises(ConfigError, match="memory_data_param.channels"):
        setup_layer(make_layer("type: 'MemoryData' memory_data_param { batch_size: 2 height: 1 width: 1 }"),
                    [], num_top=2)


@pytest.mark.gpu
def test_memory_data_on_the_gpu():
    backend.set_mode_gpu()
    try:
        layer = make_layer(TEXT)
        bottom, top = setup_layer(layer, [], num_top=2)
        data, labels = arrays()
        layer.set_input_arrays(data, labels)
        layer.forward(bottom, top)
        np.testing.assert_array_equal(backend.to_cpu(top[0].data), data[:2])
    finally:
        backend.set_mode_cpu()
