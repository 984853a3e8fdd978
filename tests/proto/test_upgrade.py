"""Legacy nets and solvers upgrade as Caffe's upgrade_proto does."""
import json
import logging

import numpy as np
import pytest

from dist_caffe import proto
from dist_caffe.errors import ConfigError
from dist_caffe.proto import caffe_pb2
from dist_caffe.proto.upgrade import legacy_formats, needs_upgrade, upgrade_net, upgrade_solver


def net(text):
    return proto.parse_text(text, caffe_pb2.NetParameter)


def solver(text):
    return proto.parse_text(text, caffe_pb2.SolverParameter)


@pytest.fixture
def v1_case(shared_dir):
    return shared_dir / "conformance" / "caffe_ref" / "caffemodel_v1"


# --------------------------------------------- V1 files upgraded by real Caffe

def test_v1_prototxt_upgrades_exactly_as_caffe(v1_case):
    legacy = net((v1_case / "lenet_v1.prototxt").read_text())
    by_caffe = net((v1_case / "lenet_v1_upgraded_by_caffe.prototxt").read_text())
    assert legacy_formats(legacy) == ["V1 layers", "input fields"]
    upgraded, changed = upgrade_net(legacy)
    assert changed
    assert [(l.name, l.type, list(l.bottom), list(l.top)) for l in upgraded.layer] == \
        [(l.name, l.type, list(l.bottom), list(l.top)) for l in by_caffe.layer]
    assert [[(p.lr_mult, p.decay_mult) for p in l.param] for l in upgraded.layer] == \
        [[(p.lr_mult, p.decay_mult) for p in l.param] for l in by_caffe.layer]
    assert upgraded == by_caffe                            # every field, not just the above
    assert not needs_upgrade(by_caffe) and upgrade_net(by_caffe) == (by_caffe, False)
    assert len(legacy.layers) == 9 and not legacy.layer    # the input was not modified


def test_v1_caffemodel_upgrades_with_the_same_blobs(v1_case):
    path = v1_case / "lenet_v1.caffemodel"
    raw = proto.read_binary_proto(path, caffe_pb2.NetParameter, upgrade=False)
    model = proto.read_binary_proto(path, caffe_pb2.NetParameter)
    assert len(raw.layers) == 9 and not raw.layer
    assert not model.layers and not model.input and not model.input_dim
    case = json.loads((v1_case / "case.json").read_text())
    assert [[l.name, l.type, list(l.bottom), list(l.top)] for l in model.layer] == \
        case["upgraded_layers"]
    blobs = {l.name: list(l.blobs) for l in model.layer if l.blobs}
    assert blobs == {v1.name: list(v1.blobs) for v1 in raw.layers if v1.blobs}
    ip1_weights = blobs["ip1"][0]                          # legacy 4-D dims are kept as written
    assert not ip1_weights.HasField("shape")
    assert (ip1_weights.num, ip1_weights.channels, ip1_weights.height, ip1_weights.width) == \
        (1, 1, 500, 800)
    expected = np.load(v1_case / "expected.npz")          # weights as Caffe loaded them
    for key in ("param/conv1/0", "param/ip2/0", "param/ip2/1"):
        _, layer, i = key.split("/")
        np.testing.assert_array_equal(np.asarray(blobs[layer][int(i)].data, np.float32),
                                      expected[key].ravel())
    assert [p.lr_mult for p in model.layer[1].param] == [1.0, 2.0]


def test_reading_a_legacy_file_warns_once(v1_case, caplog):
    with caplog.at_level(logging.WARNING, logger="dist_caffe.proto"):
        first = proto.read_net_param(v1_case / "lenet_v1.prototxt")
        proto.read_net_param(v1_case / "lenet_v1.prototxt")
    warnings = [r for r in caplog.records if "legacy" in r.getMessage()]
    assert len(warnings) <= 1                              # 0 if an earlier test read it
    assert first.layer[0].type == "Input"


def test_legacy_text_warns_with_its_name(caplog):
    with caplog.at_level(logging.WARNING, logger="dist_caffe.proto"):
        proto.read_net_param('name: "warn_me" input: "x" input_dim: 1 input_dim: 2 '
                             'input_dim: 3 input_dim: 4 layer { name: "r" type: "ReLU" }')
    assert any("<string>" in r.getMessage() and "input fields" in r.getMessage()
               for r in caplog.records)


# ---------------------------------------------------------------- inputs

def test_input_dim_becomes_one_input_layer_first():
    upgraded, changed = upgrade_net(net("""
        name: "deploy"
        input: "data" input_dim: 10 input_dim: 3 input_dim: 227 input_dim: 227
        input: "label" input_dim: 10 input_dim: 1 input_dim: 1 input_dim: 1
        layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" }"""))
    assert changed
    assert upgraded == net("""
        name: "deploy"
        layer { name: "input" type: "Input" top: "data" top: "label"
                input_param { shape { dim: 10 dim: 3 dim: 227 dim: 227 }
                              shape { dim: 10 dim: 1 dim: 1 dim: 1 } } }
        layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" }""")


def test_input_shape_becomes_input_layer():
    upgraded, _ = upgrade_net(net("""
        input: "a" input_shape { dim: 2 dim: 5 }
        input: "b" input_shape { dim: 7 }"""))
    assert [list(s.dim) for s in upgraded.layer[0].input_param.shape] == [[2, 5], [7]]
    assert list(upgraded.layer[0].top) == ["a", "b"] and not upgraded.input_shape


def test_input_without_shape_is_dropped():
    upgraded, changed = upgrade_net(net('input: "data" layer { name: "r" type: "ReLU" }'))
    assert changed and not upgraded.input and [l.name for l in upgraded.layer] == ["r"]


def test_wrong_number_of_input_dims_is_config_error():
    with pytest.raises(ConfigError, match="2 input.*8 input_dim.*found 4"):
        upgrade_net(net('input: "a" input: "b" input_dim: 1 input_dim: 1 input_dim: 1 '
                        'input_dim: 1'), "deploy.prototxt")


# --------------------------------------------------------------------- V1

V1_NET = """
name: "v1"
layers {
  name: "data" type: DATA top: "data" top: "label"
  data_param { source: "train_lmdb" backend: LMDB batch_size: 64 scale: 0.00390625
               mean_file: "mean.binaryproto" crop_size: 24 mirror: true }
  include { phase: TRAIN }
}
layers {
  name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  param: "conv1_w" param: "conv1_b" blob_share_mode: PERMISSIVE
  convolution_param { num_output: 8 kernel_size: 3 weight_filler { type: "xavier" } }
}
layers { name: "drop" type: DROPOUT bottom: "conv1" top: "conv1"
         dropout_param { dropout_ratio: 0.3 } }
layers { name: "ip" type: INNER_PRODUCT bottom: "conv1" top: "ip"
         inner_product_param { num_output: 10 } }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "ip" bottom: "label" top: "loss"
         loss_weight: 0.5 loss_param { ignore_label: 255 } exclude { phase: TEST stage: "deploy" } }
"""

CURRENT_NET = """
name: "v1"
layer {
  name: "data" type: "Data" top: "data" top: "label"
  include { phase: TRAIN }
  transform_param { scale: 0.00390625 mirror: true crop_size: 24 mean_file: "mean.binaryproto" }
  data_param { source: "train_lmdb" backend: LMDB batch_size: 64 }
}
layer {
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { name: "conv1_w" share_mode: PERMISSIVE lr_mult: 1 decay_mult: 1 }
  param { name: "conv1_b" lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 8 kernel_size: 3 weight_filler { type: "xavier" } }
}
layer { name: "drop" type: "Dropout" bottom: "conv1" top: "conv1"
        dropout_param { dropout_ratio: 0.3 } }
layer { name: "ip" type: "InnerProduct" bottom: "conv1" top: "ip"
        inner_product_param { num_output: 10 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss"
        loss_weight: 0.5 loss_param { ignore_label: 255 } exclude { phase: TEST stage: "deploy" } }
"""


def test_v1_net_with_rules_params_and_data_fields():
    legacy = net(V1_NET)
    assert legacy_formats(legacy) == ["data transformation fields outside transform_param",
                                      "V1 layers"]
    upgraded, changed = upgrade_net(legacy)
    assert changed and upgraded == net(CURRENT_NET)


def test_every_v1_type_has_a_current_name():
    from dist_caffe.proto.upgrade import V1_LAYER_TYPES
    assert set(V1_LAYER_TYPES) == set(caffe_pb2.V1LayerParameter.LayerType.keys())


def test_layer_and_layers_together_is_config_error():
    with pytest.raises(ConfigError, match="mixed.prototxt: .*both 'layer' and legacy 'layers'"):
        upgrade_net(net('layer { name: "a" type: "ReLU" } layers { name: "b" type: RELU }'),
                    "mixed.prototxt")


# --------------------------------------------------------------------- V0

V0_NET = """
name: "v0net"
layers { layer { name: "data" type: "data" source: "db" batchsize: 64 scale: 0.00390625
                 cropsize: 24 mirror: true meanfile: "m.binaryproto" }
         top: "data" top: "label" }
layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 stride: 1 biasterm: false
                 weight_filler { type: "gaussian" std: 0.01 }
                 blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0 }
         bottom: "pad1" top: "conv1" }
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 2 stride: 2 }
         bottom: "conv1" top: "pool1" }
layers { layer { name: "norm1" type: "lrn" local_size: 3 alpha: 0.0001 beta: 0.75 }
         bottom: "pool1" top: "norm1" }
layers { layer { name: "fc" type: "innerproduct" num_output: 10 } bottom: "norm1" top: "fc" }
layers { layer { name: "loss" type: "softmax_loss" } bottom: "fc" bottom: "label" top: "loss" }
"""

V0_UPGRADED = """
name: "v0net"
layer { name: "data" type: "Data" top: "data" top: "label"
        transform_param { scale: 0.00390625 mirror: true crop_size: 24 mean_file: "m.binaryproto" }
        data_param { source: "db" batch_size: 64 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
        convolution_param { num_output: 4 bias_term: false pad: 2 kernel_size: 3 stride: 1
                            weight_filler { type: "gaussian" std: 0.01 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1"
        lrn_param { local_size: 3 alpha: 0.0001 beta: 0.75 } }
layer { name: "fc" type: "InnerProduct" bottom: "norm1" top: "fc"
        inner_product_param { num_output: 10 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""


def test_v0_net_upgrades_and_folds_padding_into_conv():
    legacy = net(V0_NET)
    assert legacy_formats(legacy)[0] == "V0 layers"
    upgraded, changed = upgrade_net(legacy)
    assert changed and upgraded == net(V0_UPGRADED)


def test_v0_padding_before_a_non_conv_layer_is_config_error():
    bad = net("""
        input: "x" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4
        layers { layer { name: "pad" type: "padding" pad: 1 } bottom: "x" top: "p" }
        layers { layer { name: "r" type: "relu" } bottom: "p" top: "r" }""")
    with pytest.raises(ConfigError, match="old.prototxt: padding layer 'pad' feeds layer 'r'"):
        upgrade_net(bad, "old.prototxt")


def test_v0_unknown_type_lists_known_types():
    with pytest.raises(ConfigError, match="unknown V0 type 'warp'.*known: accuracy"):
        upgrade_net(net('layers { layer { name: "w" type: "warp" } }'))


# -------------------------------------------------------------- BatchNorm

def test_batch_norm_with_three_learnable_params_is_frozen_keeping_names():
    upgraded, changed = upgrade_net(net("""
        layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x"
                param { name: "m" lr_mult: 1 } param { name: "v" } param { name: "s" } }"""))
    assert changed
    assert [(p.name, p.lr_mult, p.decay_mult) for p in upgraded.layer[0].param] == \
        [("m", 0, 0), ("v", 0, 0), ("s", 0, 0)]


def test_batch_norm_already_frozen_is_not_legacy():
    frozen = net('layer { name: "bn" type: "BatchNorm" ' +
                 'param { lr_mult: 0 decay_mult: 0 } ' * 3 + '}')
    assert legacy_formats(frozen) == [] and upgrade_net(frozen) == (frozen, False)


# ----------------------------------------------------------------- solver

@pytest.mark.parametrize("enum_name, type_name", [
    ("SGD", "SGD"), ("NESTEROV", "Nesterov"), ("ADAGRAD", "AdaGrad"),
    ("RMSPROP", "RMSProp"), ("ADADELTA", "AdaDelta"), ("ADAM", "Adam")])
def test_solver_type_enum_becomes_type_string(enum_name, type_name):
    legacy = solver(f'net: "n.prototxt" base_lr: 0.01 solver_type: {enum_name}')
    assert needs_upgrade(legacy)
    upgraded, changed = upgrade_solver(legacy)
    assert changed and upgraded.type == type_name and not upgraded.HasField("solver_type")
    assert upgraded.base_lr == pytest.approx(0.01) and upgraded.net == "n.prototxt"


def test_solver_with_both_type_fields_is_config_error():
    with pytest.raises(ConfigError, match="s.prototxt: both solver_type .* and type"):
        upgrade_solver(solver('type: "Adam" solver_type: ADAM'), "s.prototxt")


def test_current_solver_is_unchanged_and_inline_nets_upgrade():
    current = solver('net: "n.prototxt" type: "Nesterov" momentum: 0.9')
    assert upgrade_solver(current) == (current, False)
    inline = solver('train_net_param { layers { name: "r" type: RELU } } solver_type: ADAM')
    assert legacy_formats(inline) == ["solver_type enum", "V1 layers"]
    upgraded, _ = upgrade_solver(inline)
    assert upgraded.type == "Adam" and upgraded.train_net_param.layer[0].type == "ReLU"


def test_read_solver_param_upgrades_file(tmp_path):
    path = tmp_path / "solver.prototxt"
    path.write_text('net: "train.prototxt"\nbase_lr: 0.1\nlr_policy: "step"\n'
                    'solver_type: RMSPROP\n')
    upgraded = proto.read_solver_param(path)
    assert upgraded.type == "RMSProp" and upgraded.lr_policy == "step"
