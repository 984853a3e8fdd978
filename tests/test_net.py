"""Net construction: phase rules, splits, in-place, shared params, flat buffers, errors."""
import numpy as np
import pytest

from dist_caffe import ConfigError, Net, TEST, TRAIN
from dist_caffe.proto import caffe_pb2, parse_text

MLP = """
name: "mlp"
layer { name: "in" type: "Input" top: "x" top: "t"
        input_param { shape { dim: 4 dim: 6 } shape { dim: 4 dim: 3 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "h"
        param { name: "w1" } param { lr_mult: 2 }
        inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.5 }
                              bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "relu" type: "ReLU" bottom: "h" top: "h" relu_param { negative_slope: 0.1 } }
layer { name: "ip2" type: "InnerProduct" bottom: "h" top: "y"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "ip_side" type: "InnerProduct" bottom: "h" top: "z"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "ip_shared" type: "InnerProduct" bottom: "x" top: "h2" param { name: "w1" }
        inner_product_param { num_output: 5 bias_term: false } }
layer { name: "ip3" type: "InnerProduct" bottom: "h2" top: "y2"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "loss" }
layer { name: "loss2" type: "EuclideanLoss" bottom: "z" bottom: "t" top: "loss2" loss_weight: 0.5 }
layer { name: "loss3" type: "EuclideanLoss" bottom: "y2" bottom: "t" top: "loss3" }
layer { name: "only_test" type: "ReLU" bottom: "y" top: "yt" include { phase: TEST } }
"""


def net_from(text, phase=TRAIN, **kw):
    return Net(parse_text(text, caffe_pb2.NetParameter), phase, **kw)


def feed(net, seed=0):
    g = np.random.default_rng(seed)
    for name in net.inputs:
        net.blobs[name].data[...] = g.standard_normal(net.blobs[name].shape)


def test_phase_rules_and_split_insertion():
    train, test = net_from(MLP, TRAIN), net_from(MLP, TEST)
    assert "only_test" not in train.layer_dict and "only_test" in test.layer_dict
    names = list(train.layer_dict)
    # t feeds three losses, h (after in-place relu) feeds ip2 and ip_side, x feeds ip1 and ip_shared
    assert "t_in_1_split" in names and "h_ip1_0_split" in names or "h_relu_0_split" in names
    split = train.layer_dict["t_in_1_split"]
    assert split.type == "Split" and len(train.top_vecs[names.index("t_in_1_split")]) == 3
    assert train.bottom_names["loss2"] == ["z", "t_in_1_split_1"]
    assert train.inputs == ["x", "t"]
    assert set(train.outputs) == {"loss", "loss2", "loss3"}


def test_in_place_layer_shares_its_blob():
    net = net_from(MLP)
    i = list(net.layer_dict).index("relu")
    assert net.top_vecs[i][0] is net.bottom_vecs[i][0] is net.blobs["h"]


def test_shared_params_are_one_blob_and_gradients_accumulate():
    net = net_from("force_backward: true\n" + MLP, dtype=np.float64)  # x gets a gradient too
    assert net.params["ip_shared"][0] is net.params["ip1"][0]
    assert len(net.param_layout) == 8  # 5 layers x (w, b), ip_shared has no bias and shares w1
    check_net_gradient(net)


def check_net_gradient(net, step=1e-6):
    """Finite differences of the net's total loss against its backward, every param and input."""
    feed(net)
    net.clear_param_diffs()
    net.forward()
    net.backward()
    targets = [(e.blob, e.blob.diff.copy()) for e in net.param_layout]
    targets.append((net.blobs["x"], net.blobs["x"].diff.copy()))
    for blob, analytic in targets:
        flat, grad = blob.data.reshape(-1), analytic.reshape(-1)
        for k in range(0, flat.size, max(1, flat.size // 7)):
            x = flat[k]
            flat[k] = x + step
            plus = net.forward_from_to()
            flat[k] = x - step
            minus = net.forward_from_to()
            flat[k] = x
            assert abs((plus - minus) / (2 * step) - grad[k]) < 1e-6 * max(1, abs(grad[k]))


def test_flat_buffers_reverse_order_views_and_hooks():
    net = net_from(MLP)
    layout = net.param_layout
    # learnable params ordered by the layer after whose backward they are final, last first
    ready = [e.ready_layer for e in layout]
    assert ready == sorted(ready, reverse=True)
    assert [e.layer_name for e in layout][-2:] == ["ip1", "ip1"]  # w1 is final only after ip1
    offsets = [e.offset for e in layout]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert sum(e.count for e in layout) == net.param_data.size == net.param_diff.size
    for e in layout:
        assert np.shares_memory(e.blob.data, net.param_data)
        assert np.shares_memory(e.blob.diff, net.param_diff)
    net.param_data[:] = 2.0
    assert (net.params["ip2"][0].data == 2.0).all()
    seen = []
    net.after_backward.append(seen.append)
    feed(net)
    net.forward()
    net.backward()
    assert seen == list(reversed(range(len(net.layers))))


def test_frozen_params_go_last_and_get_no_gradient():
    text = MLP.replace('param { name: "w1" } param { lr_mult: 2 }',
                       'param { name: "w1" lr_mult: 0 } param { lr_mult: 0 }').replace(
        'param { name: "w1" }\n', 'param { name: "w1" lr_mult: 0 }\n')
    net = net_from(text)
    assert [e.layer_name for e in net.param_layout[-2:]] == ["ip1", "ip1"]
    assert net.learnable_count == net.param_data.size - net.params["ip1"][0].count - 5
    feed(net)
    net.clear_param_diffs()
    net.forward()
    net.backward()
    assert not net.params["ip1"][0].diff.any() and net.params["ip2"][0].diff.any()
    i = list(net.layer_dict).index("ip_shared")
    assert not net.layer_need_backward[i]  # no learnable param and x needs no gradient


def test_propagate_down_false_stops_the_gradient():
    text = MLP.replace('bottom: "h" top: "y"', 'bottom: "h" top: "y" propagate_down: false')
    net = net_from(text)
    i = list(net.layer_dict).index("ip2")
    assert net.bottom_need_backward[i] == [False] and net.layer_need_backward[i]


def test_default_and_explicit_loss_weights():
    net = net_from(MLP)
    assert net.blob_loss_weights == {"loss": 1.0, "loss2": 0.5, "loss3": 1.0}
    feed(net)
    net.forward()
    total = sum(float(net.blobs[n].data) * w for n, w in net.blob_loss_weights.items())
    assert net.loss == pytest.approx(total, rel=1e-6)


def test_save_and_copy_from_round_trip(tmp_path):
    net = net_from(MLP)
    path = tmp_path / "w.caffemodel"
    net.save(str(path))
    other = net_from(MLP, weights=str(path))
    for name in net.params:
        for a, b in zip(net.params[name], other.params[name]):
            np.testing.assert_array_equal(a.data, b.data)
    saved = caffe_pb2.NetParameter.FromString(path.read_bytes())
    assert not any(l.type == "Split" for l in saved.layer)  # implicit splits are not saved
    assert len([l for l in saved.layer if l.name == "ip_shared"][0].blobs) == 1  # sharer's copy


def test_copy_from_shape_mismatch_says_rename(tmp_path):
    path = tmp_path / "w.caffemodel"
    net_from(MLP).save(str(path))
    with pytest.raises(ConfigError, match=r"param 0 of layer 'ip1'.*shape mismatch.*rename the layer"):
        net_from(MLP.replace("dim: 4 dim: 6", "dim: 4 dim: 7"), weights=str(path))


def test_truncated_caffemodel_is_a_clear_error(tmp_path):
    path = tmp_path / "w.caffemodel"
    net_from(MLP).save(str(path))
    path.write_bytes(path.read_bytes()[:-37])
    with pytest.raises(ConfigError, match=r"w\.caffemodel.*truncated"):
        net_from(MLP, weights=str(path))


@pytest.mark.parametrize("change, pattern", [
    (('type: "ReLU"', 'type: "Relu"'), r"layer 'relu': unknown type 'Relu' \(known: .*ReLU"),
    (('bottom: "h2" top: "y2"', 'bottom: "hh" top: "y2"'),
     r"layer 'ip3' \(InnerProduct\): bottom 'hh' is produced by no layer"),
    (('top: "z"', 'top: "y"'), r"layer 'ip_side' \(InnerProduct\): top 'y' is already produced by layer 'ip2'"),
])
def test_bad_nets_name_the_layer(change, pattern):
    with pytest.raises(ConfigError, match=pattern):
        net_from(MLP.replace(*change))


def test_shared_param_shape_mismatch():
    text = MLP.replace('num_output: 5 bias_term: false', 'num_output: 6 bias_term: false')
    with pytest.raises(ConfigError, match=r"ip_shared.*'w1'.*shapes differ"):
        net_from(text)


def test_prototxt_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text('name: "x"\nlayer {\n  name: "a"\n  type: "Input"\n  toop: "x"\n}\n')
    with pytest.raises(ConfigError, match=r"bad\.prototxt:5:\d+"):
        Net(str(path), TEST)


def test_stage_and_level_rules():
    text = """
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }
    layer { name: "a" type: "ReLU" bottom: "x" top: "a" include { stage: "deploy" } }
    layer { name: "b" type: "ReLU" bottom: "x" top: "b" include { min_level: 2 } }
    layer { name: "c" type: "ReLU" bottom: "x" top: "c" exclude { not_stage: "deploy" } }
    """
    assert list(net_from(text, TEST).layer_dict) == ["in"]
    net = net_from(text, TEST, stages=["deploy"], level=2)
    assert [n for n in net.layer_dict if not n.endswith("_split")] == ["in", "a", "b", "c"]


def test_debug_info_logs_every_blob_like_caffe(caplog):
    net = net_from("debug_info: true\n" + MLP)
    feed(net)
    with caplog.at_level("INFO", logger="dist_caffe.net"):
        net.forward()
        net.backward()
    text = caplog.text
    h = float(np.abs(net.blobs["h"].data).mean())
    assert f"[Forward] Layer relu, top blob h data: {h:g}" in text
    assert "[Forward] Layer ip1, param blob 0 data:" in text
    assert "[Backward] Layer ip2, bottom blob h_relu_0_split_0 diff:" in text
    assert "[Backward] Layer ip2, param blob 0 diff:" in text
