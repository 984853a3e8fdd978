"""Split: tops share the bottom's data, backward sums their diffs, no in-place."""
import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.net import Net
from dist_caffe.proto import caffe_pb2, parse_text
from dist_caffe.testing import assert_cpu_gpu_parity, check_gradient, make_layer, setup_layer


def test_tops_share_the_bottom_data():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    layer = make_layer("type: 'Split'")
    bottom, top = setup_layer(layer, [x], num_top=3)
    layer.forward(bottom, top)
    for t in top:
        assert t.shape == x.shape
        np.testing.assert_array_equal(t.data, x)
    bottom[0].data[0, 0, 0] = 99.0  # shared storage, not a copy
    assert all(t.data[0, 0, 0] == 99.0 for t in top)


@pytest.mark.parametrize("num_top", [1, 2, 3])
def test_backward_sums_top_diffs(num_top):
    g = np.random.default_rng(num_top)
    layer = make_layer("type: 'Split'")
    bottom, top = setup_layer(layer, [g.standard_normal((3, 5))], num_top=num_top)
    layer.forward(bottom, top)
    diffs = [g.standard_normal((3, 5)) for _ in top]
    for t, d in zip(top, diffs):
        t.diff[...] = d
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, np.sum(diffs, axis=0), rtol=1e-12)
    for t, d in zip(top, diffs):
        np.testing.assert_array_equal(t.diff, d)  # tops' diffs are left alone
    bottom[0].diff[...] = 7
    layer.backward(top, [False], bottom)
    assert np.all(bottom[0].diff == 7)


@pytest.mark.parametrize("shape", [(2, 3, 4), (5,)])
def test_gradient_three_tops(shape):
    check_gradient(make_layer("type: 'Split'"), bottom_shapes=[shape], num_top=3)


def test_follows_a_reshaped_bottom():
    layer = make_layer("type: 'Split'")
    bottom, top = setup_layer(layer, [np.ones((2, 3))], num_top=2)
    bottom[0].reshape(4, 3)
    bottom[0].data[...] = np.arange(12.0).reshape(4, 3)
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    assert all(t.shape == (4, 3) and np.array_equal(t.data, bottom[0].data) for t in top)


def test_in_place_is_a_config_error():
    layer = make_layer("type: 'Split'")
    blob = Blob((2, 3), np.float64)
    with pytest.raises(ConfigError, match="top.*in place"):
        layer.setup([blob], [Blob((), np.float64), blob])
    with pytest.raises(ConfigError, match="top"):
        make_layer("type: 'Split'").setup([blob], [])


def test_net_inserts_split_and_sums_the_readers_gradients():
    net = Net(parse_text("""force_backward: true
        layer { name: 'in' type: 'Input' top: 'x' top: 'label' top: 't'
                input_param { shape { dim: 3 dim: 4 } shape { dim: 3 } shape { dim: 3 dim: 4 } } }
        layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'label' top: 'loss' }
        layer { name: 'l2' type: 'EuclideanLoss' bottom: 'x' bottom: 't' top: 'l2' loss_weight: 0.5 }
        layer { name: 'acc' type: 'Accuracy' bottom: 'x' bottom: 'label' top: 'acc' }""",
        caffe_pb2.NetParameter), caffe_pb2.TRAIN, dtype=np.float64)
    assert "x_in_0_split" in net.layer_dict and net.top_names["x_in_0_split"] == [
        "x_in_0_split_0", "x_in_0_split_1", "x_in_0_split_2"]
    g = np.random.default_rng(0)
    x, label, t = g.standard_normal((3, 4)), np.array([0.0, 3.0, 1.0]), g.standard_normal((3, 4))
    net.blobs["x"].data[...], net.blobs["label"].data[...], net.blobs["t"].data[...] = x, label, t
    loss = net.forward_backward()
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    onehot = np.eye(4)[label.astype(int)]
    expected_loss = -np.log(p[onehot == 1]).mean() + 0.5 * np.sum((x - t) ** 2) / 3 / 2
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(net.blobs["x"].diff, (p - onehot) / 3 + 0.5 * (x - t) / 3, rtol=1e-10)
    np.testing.assert_allclose(net.blobs["t"].diff, -0.5 * (x - t) / 3, rtol=1e-10)
    assert not net.blobs["label"].diff.any()


@pytest.mark.gpu
@pytest.mark.skipif(not backend.has_gpu(), reason="no CUDA GPU")
def test_cpu_gpu_parity():
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    assert_cpu_gpu_parity("type: 'Split'", bottoms=[x], num_top=3, rtol=1e-12, atol=0)
