"""Parameter: a learnable blob as a top."""
import numpy as np
import pytest

from dist_caffe import TRAIN, Net, backend
from dist_caffe.errors import ConfigError
from dist_caffe.testing import check_gradient, make_layer, setup_layer

NET = """
force_backward: true
layer { name: 'w' type: 'Parameter' top: 'w' parameter_param { shape { dim: 2 dim: 3 } } }
layer { name: 't' type: 'Input' top: 'target' input_param { shape { dim: 2 dim: 3 } } }
layer { name: 'loss' type: 'EuclideanLoss' bottom: 'w' bottom: 'target' top: 'loss' }
"""


def test_parameter_top_is_the_blob_and_starts_at_zero():
    layer = make_layer("type: 'Parameter' parameter_param { shape { dim: 2 dim: 3 } }")
    _, top = setup_layer(layer, [], num_top=1)
    assert top[0].shape == (2, 3) and layer.blobs[0].shape == (2, 3)
    np.testing.assert_array_equal(top[0].data, 0)
    layer.blobs[0].data[...] = 4
    np.testing.assert_array_equal(top[0].data, 4)


def test_parameter_gradient():
    check_gradient(make_layer("type: 'Parameter' parameter_param { shape { dim: 3 dim: 2 } }"),
                   bottoms=[], num_top=1)


def test_parameter_in_a_net_learns_from_the_loss_and_accumulates():
    net = Net(NET, TRAIN, dtype=np.float64)
    w = np.random.default_rng(0).standard_normal((2, 3))
    target = np.random.default_rng(1).standard_normal((2, 3))
    net.params["w"][0].data[...] = w
    net.blobs["target"].data[...] = target
    net.clear_param_diffs()
    for _ in range(2):  # two passes: iter_size-style accumulation
        net.forward()
        net.backward()
    np.testing.assert_allclose(net.blobs["w"].data, w)
    np.testing.assert_allclose(net.params["w"][0].diff, 2 * (w - target) / 2)


def test_parameter_bad_config_names_field():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'Parameter' parameter_param { shape { dim: 2 } }"),
                    [np.ones(2)], num_top=1)


@pytest.mark.gpu
def test_parameter_cpu_gpu_parity():
    backend.set_mode_gpu()
    try:
        net = Net(NET, TRAIN, dtype=np.float64)
        net.blobs["target"].data = np.ones((2, 3))
        net.forward()
        net.backward()
        np.testing.assert_allclose(backend.to_cpu(net.params["w"][0].diff), -np.ones((2, 3)) / 2)
    finally:
        backend.set_mode_cpu()
