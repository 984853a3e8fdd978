"""dist-caffe upgrade_net_proto_text / upgrade_net_proto_binary / upgrade_solver_proto_text."""
import numpy as np
import pytest
from google.protobuf import text_format

from dist_caffe import cli
from dist_caffe.proto import caffe_pb2, read_binary_proto
from dist_caffe.testing.caffe_ref import compare, run_forward_backward

V0_NET = """
name: "v0"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 stride: 1 pad: 1
                 blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0 }
         bottom: "data" top: "conv1" }
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: MAX kernelsize: 2 stride: 2 }
         bottom: "conv1" top: "pool1" }
"""


def parse(path, cls=caffe_pb2.NetParameter):
    return text_format.Parse(path.read_text(), cls())


def test_upgraded_v1_prototxt_equals_caffes_own_upgrade(conformance, tmp_path, capsys):
    case = conformance / "caffe_ref" / "caffemodel_v1"
    out = tmp_path / "lenet.prototxt"
    assert cli.main(["upgrade_net_proto_text", str(case / "lenet_v1.prototxt"), str(out)]) == 0
    assert parse(out) == parse(case / "lenet_v1_upgraded_by_caffe.prototxt")
    assert "Wrote upgraded NetParameter text proto" in capsys.readouterr().err


def test_upgraded_v1_caffemodel_reproduces_caffes_outputs(conformance, tmp_path):
    case = conformance / "caffe_ref" / "caffemodel_v1"
    out = tmp_path / "lenet.caffemodel"
    assert cli.main(["upgrade_net_proto_binary", str(case / "lenet_v1.caffemodel"), str(out)]) == 0
    upgraded = read_binary_proto(out, caffe_pb2.NetParameter, upgrade=False)
    assert len(upgraded.layers) == 0 and len(upgraded.layer) > 0
    conv1 = next(l for l in upgraded.layer if l.name == "conv1")
    assert conv1.type == "Convolution" and len(conv1.blobs) == 2
    actual, meta, _ = run_forward_backward(case, "net.prototxt", str(out))
    assert not compare(actual, np.load(case / "expected.npz"), meta)


def test_v0_prototxt_is_upgraded(tmp_path):
    src, out = tmp_path / "v0.prototxt", tmp_path / "new.prototxt"
    src.write_text(V0_NET)
    assert cli.main(["upgrade_net_proto_text", str(src), str(out)]) == 0
    net = parse(out)
    assert [(l.name, l.type) for l in net.layer] == [
        ("input", "Input"), ("conv1", "Convolution"), ("relu1", "ReLU"), ("pool1", "Pooling")]
    conv = net.layer[1]
    assert conv.convolution_param.num_output == 4 and list(conv.convolution_param.pad) == [1]
    assert [p.lr_mult for p in conv.param] == [1, 2] and [p.decay_mult for p in conv.param] == [1, 0]
    assert net.layer[3].pooling_param.kernel_size == 2


def test_solver_type_enum_is_upgraded(tmp_path):
    src, out = tmp_path / "solver.prototxt", tmp_path / "new_solver.prototxt"
    src.write_text('net: "train_val.prototxt"\nbase_lr: 0.01\nsolver_type: ADAGRAD\n')
    assert cli.main(["upgrade_solver_proto_text", str(src), str(out)]) == 0
    solver = parse(out, caffe_pb2.SolverParameter)
    assert solver.type == "AdaGrad" and not solver.HasField("solver_type")
    assert solver.net == "train_val.prototxt" and solver.base_lr == pytest.approx(0.01)


def test_current_file_is_written_back_unchanged(tmp_path, capsys):
    src, out = tmp_path / "net.prototxt", tmp_path / "same.prototxt"
    src.write_text('name: "n" layer { name: "in" type: "Input" top: "x" '
                   'input_param { shape { dim: 1 } } }')
    assert cli.main(["upgrade_net_proto_text", str(src), str(out)]) == 0
    assert parse(out) == parse(src)
    assert "already in latest proto format" in capsys.readouterr().err


def test_upgrade_errors(tmp_path, capsys):
    assert cli.main(["upgrade_net_proto_text", str(tmp_path / "missing"), str(tmp_path / "o")]) == 1
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "bad.prototxt").write_text("layers { type: CONVOLUTIO }")
    assert cli.main(["upgrade_net_proto_text", str(tmp_path / "bad.prototxt"), str(tmp_path / "o")]) == 1
    assert "bad.prototxt:1" in capsys.readouterr().err
    (tmp_path / "junk.caffemodel").write_bytes(b"\xff\xff\xff")
    assert cli.main(["upgrade_net_proto_binary", str(tmp_path / "junk.caffemodel"), str(tmp_path / "o")]) == 1
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit):
        cli.main(["upgrade_net_proto_text", str(tmp_path / "bad.prototxt")])
