"""NetSpec: nets built in Python, as pycaffe's net_spec builds them."""
import numpy as np
import pytest
from google.protobuf import text_format

import dist_caffe as caffe
from dist_caffe import net_spec
from dist_caffe.errors import ConfigError
from dist_caffe.net_spec import layers as L, params as P
from dist_caffe.proto import caffe_pb2
from dist_caffe.testing import swap_data_for_input


def lenet(source, batch_size):
    """pycaffe's LeNet tutorial net, word for word."""
    n = caffe.NetSpec()
    n.data, n.label = L.Data(batch_size=batch_size, backend=P.Data.LMDB, source=source,
                             transform_param=dict(scale=1. / 255), ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20, weight_filler=dict(type='xavier'))
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.conv2 = L.Convolution(n.pool1, kernel_size=5, num_output=50, weight_filler=dict(type='xavier'))
    n.pool2 = L.Pooling(n.conv2, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.fc1 = L.InnerProduct(n.pool2, num_output=500, weight_filler=dict(type='xavier'))
    n.relu1 = L.ReLU(n.fc1, in_place=True)
    n.score = L.InnerProduct(n.relu1, num_output=10, weight_filler=dict(type='xavier'))
    n.loss = L.SoftmaxWithLoss(n.score, n.label)
    return n.to_proto()


EXPECTED_HEAD = """
layer { name: "data" type: "Data" top: "data" top: "label"
        transform_param { scale: 0.00392156862745 }
        data_param { source: "mnist_train_lmdb" batch_size: 64 backend: LMDB } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
"""


def test_lenet_netspec_gives_pycaffes_layers():
    net = lenet("mnist_train_lmdb", 64)
    expected = text_format.Parse(EXPECTED_HEAD, caffe_pb2.NetParameter())
    assert list(net.layer[:3]) == list(expected.layer)
    assert [(l.name, l.type, list(l.bottom), list(l.top)) for l in net.layer[3:]] == [
        ("conv2", "Convolution", ["pool1"], ["conv2"]),
        ("pool2", "Pooling", ["conv2"], ["pool2"]),
        ("fc1", "InnerProduct", ["pool2"], ["fc1"]),
        ("relu1", "ReLU", ["fc1"], ["fc1"]),             # in place: the top is the bottom
        ("score", "InnerProduct", ["fc1"], ["score"]),
        ("loss", "SoftmaxWithLoss", ["score", "label"], ["loss"]),
    ]


def test_netspec_prototxt_round_trips_and_builds_a_net():
    net = lenet("mnist_train_lmdb", 4)
    text = str(net)
    again = text_format.Parse(text, caffe_pb2.NetParameter())
    assert again == net and str(again) == text
    runnable = caffe.Net(swap_data_for_input(again, (1, 28, 28)), caffe.TRAIN, dtype=np.float64)
    runnable.blobs["data"].data[...] = np.random.default_rng(0).random((4, 1, 28, 28))
    runnable.blobs["label"].data[...] = [0, 1, 2, 3]
    out = runnable.forward()
    assert runnable.blobs["score"].shape == (4, 10) and np.isfinite(out["loss"])


def test_unassigned_tops_get_type_names_and_ntop_zero_gives_a_function():
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 3]))
    hidden = L.InnerProduct(n.data, num_output=4)
    n.out = L.ReLU(L.TanH(hidden))
    n.silence = L.Silence(n.out, ntop=0)
    net = n.to_proto()
    assert [(l.name, list(l.top)) for l in net.layer] == [
        ("data", ["data"]), ("InnerProduct1", ["InnerProduct1"]), ("TanH1", ["TanH1"]),
        ("out", ["out"]), ("silence", [])]
    assert isinstance(n.silence, net_spec.Function)


def test_multi_top_layers_and_to_proto_of_tops():
    n = caffe.NetSpec()
    n.x = L.Input(shape=[dict(dim=[2, 6])])
    n.a, n.b = L.Slice(n.x, slice_param=dict(axis=1, slice_point=[2]), ntop=2)
    net = n.to_proto()
    assert list(net.layer[1].top) == ["a", "b"] and net.layer[1].name == "a"
    assert list(net.layer[1].slice_param.slice_point) == [2]
    only = net_spec.to_proto(n.b)
    assert [l.type for l in only.layer] == ["Input", "Slice"]
    assert n.a.to_proto() == only


def test_fields_go_to_the_type_param_or_the_layer():
    n = caffe.NetSpec()
    n.x, n.y = L.Input(shape=[dict(dim=[2, 3]), dict(dim=[2, 3])], ntop=2)
    n.ip = L.InnerProduct(n.x, num_output=3, param=[dict(lr_mult=1, decay_mult=1), dict(lr_mult=2)],
                          bias_filler=dict(type="constant", value=0.1), name="fc")
    n.loss = L.EuclideanLoss(n.ip, n.y, loss_weight=0.5, include=dict(phase=caffe.TRAIN),
                             propagate_down=[True, False])
    n.py = L.Python(n.x, module="pyloss", layer="EuclideanLossLayer", param_str="{}")
    n.pool = L.Pooling(n.x, pool="AVE", global_pooling=True)   # enum by name, as in prototxt
    net = n.to_proto()
    ip, loss, py, pool = net.layer[1:]
    assert ip.name == "fc" and [p.lr_mult for p in ip.param] == [1, 2]
    assert ip.inner_product_param.bias_filler.value == pytest.approx(0.1)
    assert list(loss.loss_weight) == [0.5] and loss.include[0].phase == caffe.TRAIN
    assert list(loss.propagate_down) == [True, False]
    assert (py.python_param.module, py.python_param.layer) == ("pyloss", "EuclideanLossLayer")
    assert pool.pooling_param.pool == caffe_pb2.PoolingParameter.AVE


def test_params_give_enum_values():
    assert P.Pooling.MAX == caffe_pb2.PoolingParameter.MAX
    assert P.Data.LMDB == caffe_pb2.DataParameter.LMDB
    assert P.Eltwise.PROD == caffe_pb2.EltwiseParameter.PROD
    assert caffe.params.Pooling.AVE == caffe_pb2.PoolingParameter.AVE
    assert caffe.to_proto is net_spec.to_proto


def test_netspec_errors_say_what_is_wrong():
    n = caffe.NetSpec()
    n.x = L.Input(shape=dict(dim=[1, 2]))
    n.bad = L.InnerProduct(n.x, num_outputs=3)
    with pytest.raises(ConfigError, match="num_outputs"):
        n.to_proto()
    with pytest.raises(ConfigError, match="bottom 0"):
        L.ReLU("x")
    n2 = caffe.NetSpec()
    n2.x = L.Input(shape=dict(dim=[1, 2]))
    n2.p = L.Pooling(n2.x, pool="MEDIAN")
    with pytest.raises(ConfigError, match="MEDIAN"):
        n2.to_proto()
    with pytest.raises(AttributeError):
        n2.missing


def test_pycaffe_import_form():
    from dist_caffe import layers as L2, params as P2
    n = caffe.NetSpec()
    n.x = L2.Input(shape=dict(dim=[1, 2]))
    n.y = L2.Pooling(n.x, pool=P2.Pooling.MAX, kernel_size=1)
    assert [l.type for l in n.to_proto().layer] == ["Input", "Pooling"]
