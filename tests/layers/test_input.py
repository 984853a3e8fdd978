"""Input: top shapes from input_param, no-op passes, the caller's reshape kept, bad counts."""
import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.net import Net
from dist_caffe.proto import caffe_pb2, parse_text
from dist_caffe.testing import make_layer, setup_layer


def test_one_shape_per_top():
    layer = make_layer("type: 'Input' top: 'data' top: 'label' "
                       "input_param { shape { dim: 2 dim: 3 dim: 4 } shape { dim: 2 } }")
    _, top = setup_layer(layer, [])
    assert [t.shape for t in top] == [(2, 3, 4), (2,)]


def test_one_shape_for_all_tops_and_no_shape():
    layer = make_layer("type: 'Input' top: 'a' top: 'b' top: 'c' input_param { shape { dim: 5 dim: 1 } }")
    _, top = setup_layer(layer, [])
    assert [t.shape for t in top] == [(5, 1)] * 3
    _, top = setup_layer(make_layer("type: 'Input' top: 'a'"), [])
    assert top[0].shape == ()


def test_passes_keep_the_callers_shape_and_data():
    layer = make_layer("type: 'Input' top: 'data' input_param { shape { dim: 2 dim: 3 } }")
    bottom, top = setup_layer(layer, [])
    top[0].reshape(4, 3)
    top[0].data[...] = 7
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    layer.backward(top, [], bottom)
    assert top[0].shape == (4, 3) and np.all(top[0].data == 7)


def test_in_a_net_the_tops_are_the_inputs():
    net_param = parse_text("""
        layer { name: 'input' type: 'Input' top: 'data' top: 'label'
                input_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }
        layer { name: 'prob' type: 'Softmax' bottom: 'data' top: 'prob' }
        layer { name: 'silence' type: 'Silence' bottom: 'label' }""", caffe_pb2.NetParameter)
    net = Net(net_param, caffe_pb2.TEST)
    assert net.inputs == ["data", "label"] and net.blobs["data"].shape == (2, 3)
    x = np.arange(12.0).reshape(4, 3)  # a new batch size through forward(**inputs)
    out = net.forward(data=x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out["prob"], e / e.sum(axis=1, keepdims=True), rtol=1e-6)


def test_bad_configs_name_the_field():
    layer = make_layer("type: 'Input' top: 'a' top: 'b' top: 'c' "
                       "input_param { shape { dim: 1 } shape { dim: 2 } }")
    with pytest.raises(ConfigError, match="input_param.shape.*2 shapes for 3 tops"):
        setup_layer(layer, [])
    with pytest.raises(ConfigError, match="input_param.shape.*negative"):
        setup_layer(make_layer("type: 'Input' top: 'a' input_param { shape { dim: -1 dim: 3 } }"), [])
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'Input' top: 'a'"), [np.zeros(2)])


@pytest.mark.gpu
@pytest.mark.skipif(not backend.has_gpu(), reason="no CUDA GPU")
def test_gpu_tops_hold_what_the_caller_writes():
    backend.set_mode_gpu()
    try:
        layer = make_layer("type: 'Input' top: 'data' input_param { shape { dim: 2 dim: 3 } }")
        top = [Blob((), np.float64)]
        layer.setup([], top)
        top[0].data = np.arange(6.0).reshape(2, 3)
        layer.run_forward([], top)
        assert backend.is_gpu_array(top[0].data)
        np.testing.assert_array_equal(backend.to_cpu(top[0].data), np.arange(6.0).reshape(2, 3))
    finally:
        backend.set_mode_cpu()
