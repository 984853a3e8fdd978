"""The project's ImageNet nets and solvers in configs/ (CaffeNet, AlexNet, GoogLeNet, ResNet-50).

Each net parses, builds in TRAIN and TEST with its Data layers swapped for Input, runs
forward+backward with a finite loss and has the canonical parameter count, derived here from
the published architectures (not read back from the prototxt). Each solver parses, names an
existing net and states a self-consistent schedule; make_resnet.py reproduces its file exactly.
"""
import math

import numpy as np
import pytest

from dist_caffe import TEST, TRAIN, Net
from dist_caffe.net_param import filter_net
from dist_caffe.proto import caffe_pb2, read_net_param, read_solver_param
from dist_caffe.testing import swap_data_for_input
from dist_caffe.tools import make_resnet

from .conftest import REPO

CONFIGS = REPO / "configs"
IMAGENET_TRAIN_IMAGES = 1_281_167


# -- parameter counts from the architectures ------------------------------------------------
def conv(c_in, c_out, k, group=1, bias=True):
    return c_out * (c_in // group) * k * k + (c_out if bias else 0)


def fc(n_in, n_out):
    return n_in * n_out + n_out


def alexnet_params():
    """Krizhevsky et al. 2012 with its two-GPU groups in conv2, conv4, conv5."""
    return (conv(3, 96, 11) + conv(96, 256, 5, group=2) + conv(256, 384, 3)
            + conv(384, 384, 3, group=2) + conv(384, 256, 3, group=2)
            + fc(256 * 6 * 6, 4096) + fc(4096, 4096) + fc(4096, 1000))


# Szegedy et al. 2014, table 1: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
INCEPTION = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64),
             (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64),
             (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
             (256, 160, 320, 32, 128, 128), (256, 160, 320, 32, 128, 128),
             (384, 192, 384, 48, 128, 128)]


def googlenet_params(aux=True):
    total, c_in, aux_inputs = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3), 192, []
    for i, (c1, r3, c3, r5, c5, pp) in enumerate(INCEPTION):
        total += (conv(c_in, c1, 1) + conv(c_in, r3, 1) + conv(r3, c3, 3) + conv(c_in, r5, 1)
                  + conv(r5, c5, 5) + conv(c_in, pp, 1))
        c_in = c1 + c3 + c5 + pp
        if i in (2, 5):  # inception_4a and 4d feed the auxiliary classifiers
            aux_inputs.append(c_in)
    total += fc(1024, 1000)
    if aux:  # ave pool 5/3 -> 4x4, 1x1 conv 128, fc 1024, fc 1000
        total += sum(conv(c, 128, 1) + fc(128 * 4 * 4, 1024) + fc(1024, 1000) for c in aux_inputs)
    return total


def resnet50_blocks():
    """(c_in, c_out, kernel) of every convolution of He et al.'s ResNet-50, in order."""
    convs, c_in = [(3, 64, 7)], 64
    for blocks, width, out in ((3, 64, 256), (4, 128, 512), (6, 256, 1024), (3, 512, 2048)):
        for b in range(blocks):
            if b == 0:
                convs.append((c_in, out, 1))
            convs += [(c_in, width, 1), (width, width, 3), (width, out, 1)]
            c_in = out
    return convs


def resnet50_params():
    """Convolutions without bias, each followed by a learned scale and shift; fc1000."""
    return sum(conv(a, b, k, bias=False) + 2 * b for a, b, k in resnet50_blocks()) \
        + fc(2048, 1000)


def resnet50_bn_statistics():
    """Caffe's BatchNorm keeps running mean, variance (C each) and one weight per layer."""
    return sum(2 * b + 1 for _, b, _ in resnet50_blocks())


EXPECTED = {"caffenet": 60_965_224, "alexnet": 60_965_224, "googlenet": 13_378_280,
            "resnet50": 25_557_032}
NETS = sorted(EXPECTED)
CROP = {"caffenet": 227, "alexnet": 227, "googlenet": 224, "resnet50": 224}


def test_expected_counts_follow_from_the_architectures():
    assert alexnet_params() == EXPECTED["caffenet"] == EXPECTED["alexnet"]
    assert googlenet_params() == EXPECTED["googlenet"]
    assert googlenet_params(aux=False) == 6_998_552
    assert resnet50_params() == EXPECTED["resnet50"]
    assert len(resnet50_blocks()) == 53


# -- the nets -------------------------------------------------------------------------------
def net_path(name):
    return CONFIGS / f"{name}_train_val.prototxt"


def build(name, phase, batch):
    """The net with random images (about the spread of mean-subtracted pixels) and labels.

    A TEST net normalises with BatchNorm's running statistics, which are zero before any
    training (then x / sqrt(eps) per layer overflows in ResNet-50): as the solver's test net
    does, it shares its blobs with a TRAIN net, here after one TRAIN forward pass."""
    param = swap_data_for_input(read_net_param(str(net_path(name))), (3, 256, 256), batch=batch)
    net = Net(param, phase)
    g = np.random.default_rng(0)
    for top in net.inputs:
        blob = net.blobs[top]
        blob.data[...] = g.integers(0, 1000, blob.shape) if blob.num_axes == 1 \
            else 50 * g.standard_normal(blob.shape)
    if phase == TEST and any(layer.type == "BatchNorm" for layer in net.layers):
        train = build(name, TRAIN, batch)
        train.forward()
        net.share_with(train)
    return net


def learned_count(net):
    return sum(b.count for layer in net.layers if layer.type != "BatchNorm" for b in layer.blobs)


@pytest.mark.parametrize("name", NETS)
def test_data_layers_follow_caffe_imagenet_conventions(name):
    param = read_net_param(str(net_path(name)))
    for phase, source, mirror in ((TRAIN, "data/ilsvrc12_train_lmdb", True),
                                  (TEST, "data/ilsvrc12_val_lmdb", False)):
        data = [l for l in filter_net(param, caffe_pb2.NetState(phase=phase)).layer
                if l.type == "Data"]
        assert len(data) == 1 and list(data[0].top) == ["data", "label"]
        t, d = data[0].transform_param, data[0].data_param
        assert (t.crop_size, t.mirror, list(t.mean_value)) == (CROP[name], mirror, [104, 117, 123])
        assert (d.source, d.backend) == (source, caffe_pb2.DataParameter.LMDB)
        batch = 256 if name in ("caffenet", "alexnet") else 32
        assert d.batch_size == (50 if phase == TEST else batch)


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("phase", [TRAIN, TEST], ids=["TRAIN", "TEST"])
def test_net_builds_runs_and_has_the_canonical_size(name, phase):
    batch = 1 if name == "resnet50" else 2
    net = build(name, phase, batch)
    assert learned_count(net) == EXPECTED[name]
    assert net.learnable_count == EXPECTED[name]  # every learned blob has lr_mult > 0
    if name == "resnet50":
        stats = sum(b.count for l in net.layers if l.type == "BatchNorm" for b in l.blobs)
        assert stats == resnet50_bn_statistics()
    loss = net.forward_backward()
    assert math.isfinite(loss) and loss > 0
    for out in net.outputs:
        assert np.isfinite(net.blobs[out].data).all(), out
    first = net.layers[next(i for i, l in enumerate(net.layers) if l.type == "Convolution")]
    assert np.isfinite(first.blobs[0].diff).all() and np.abs(first.blobs[0].diff).sum() > 0
    accuracies = [o for o in net.outputs if "top-" in o or o == "accuracy"]
    assert len(accuracies) == (0 if phase == TRAIN else 6 if name == "googlenet" else 2)
    for o in accuracies:
        assert 0 <= float(net.blobs[o].data) <= 1


def test_feature_map_sizes():
    """The spatial sizes the classifiers were designed for (Caffe's ceil-mode pooling)."""
    shapes = {"caffenet": {"conv1": (96, 55, 55), "pool2": (256, 13, 13), "pool5": (256, 6, 6)},
              "alexnet": {"norm1": (96, 55, 55), "pool1": (96, 27, 27), "pool5": (256, 6, 6)},
              "googlenet": {"pool1/3x3_s2": (64, 56, 56), "inception_3b/output": (480, 28, 28),
                            "inception_4e/output": (832, 14, 14), "loss1/ave_pool": (512, 4, 4),
                            "loss2/ave_pool": (528, 4, 4), "inception_5b/output": (1024, 7, 7),
                            "pool5/7x7_s1": (1024, 1, 1)},
              "resnet50": {"pool1": (64, 56, 56), "res2c": (256, 56, 56), "res3d": (512, 28, 28),
                           "res4f": (1024, 14, 14), "res5c": (2048, 7, 7), "pool5": (2048, 1, 1)}}
    for name, expected in shapes.items():
        net = build(name, TRAIN, 1)
        for blob, shape in expected.items():
            assert net.blobs[blob].shape == (1,) + shape, (name, blob)


def test_caffenet_pools_before_normalising_and_alexnet_after():
    def order(name):
        layers = read_net_param(str(net_path(name))).layer
        return [l.name for l in layers if l.type in ("LRN", "Pooling")][:4]
    assert order("caffenet") == ["pool1", "norm1", "pool2", "norm2"]
    assert order("alexnet") == ["norm1", "pool1", "norm2", "pool2"]


def test_googlenet_weights_the_auxiliary_losses():
    net = build("googlenet", TRAIN, 1)
    assert net.blob_loss_weights == pytest.approx({"loss1/loss": 0.3, "loss2/loss": 0.3,
                                                   "loss3/loss": 1.0})
    dropout = {l.name: l.param.dropout_param.dropout_ratio for l in net.layers
               if l.type == "Dropout"}
    assert dropout == pytest.approx({"loss1/drop_fc": 0.7, "loss2/drop_fc": 0.7,
                                     "pool5/drop_7x7_s1": 0.4})


def test_resnet50_structure():
    layers = filter_net(read_net_param(str(net_path("resnet50"))),
                        caffe_pb2.NetState(phase=TRAIN)).layer
    count = lambda t: sum(l.type == t for l in layers)  # noqa: E731
    assert (count("Convolution"), count("BatchNorm"), count("Scale"), count("Eltwise")) == \
        (53, 53, 53, 16)
    assert [l.name for l in layers if l.name.endswith("_branch1") and l.type == "Convolution"] == \
        ["res2a_branch1", "res3a_branch1", "res4a_branch1", "res5a_branch1"]
    for l in layers:
        if l.type == "Convolution":
            assert not l.convolution_param.bias_term, l.name
        if l.type == "BatchNorm":  # per-phase statistics are the layer's default
            assert not l.batch_norm_param.HasField("use_global_stats"), l.name
        if l.type == "Scale":
            assert l.scale_param.bias_term, l.name


# -- make_resnet ----------------------------------------------------------------------------
def test_make_resnet_reproduces_the_config_byte_for_byte(tmp_path, capsys):
    committed = net_path("resnet50").read_bytes()
    assert make_resnet.render().encode() == committed
    out = tmp_path / "r50.prototxt"
    assert make_resnet.main(["-o", str(out)]) == 0
    assert out.read_bytes() == committed
    assert make_resnet.main(["-o", str(out), "--check"]) == 0
    out.write_text(make_resnet.render(train_batch=64))
    assert make_resnet.main(["-o", str(out), "--check"]) == 1


# -- the solvers ----------------------------------------------------------------------------
SOLVERS = ["caffenet", "alexnet", "googlenet", "resnet50", "resnet50_largebatch"]


def train_batch(net_file):
    param = filter_net(read_net_param(str(REPO / net_file)), caffe_pb2.NetState(phase=TRAIN))
    return next(l.data_param.batch_size for l in param.layer if l.type == "Data")


@pytest.mark.parametrize("name", SOLVERS)
def test_solver_parses_and_names_an_existing_net(name):
    s = read_solver_param(str(CONFIGS / f"{name}_solver.prototxt"))
    assert (REPO / s.net).is_file(), s.net
    assert s.net == f"configs/{name.split('_')[0]}_train_val.prototxt"
    assert s.base_lr > 0 and s.max_iter > 0 and s.momentum == pytest.approx(0.9)
    assert s.snapshot_prefix.startswith("out/")
    if s.lr_policy == "multistep":
        assert list(s.stepvalue) == sorted(s.stepvalue) and s.stepvalue[-1] < s.max_iter


@pytest.mark.parametrize("name, ranks, global_batch",
                         [("resnet50", 8, 256), ("resnet50_largebatch", 32, 8192)])
def test_resnet50_schedules_are_goyal_et_al(name, ranks, global_batch):
    """lr 0.1 per 256 images, /10 at epochs 30, 60, 80 of 90, momentum 0.9, decay 1e-4."""
    s = read_solver_param(str(CONFIGS / f"{name}_solver.prototxt"))
    assert train_batch(s.net) * s.iter_size * ranks == global_batch
    assert s.base_lr == pytest.approx(0.1 * global_batch / 256)
    epoch = math.ceil(IMAGENET_TRAIN_IMAGES / global_batch)
    assert list(s.stepvalue) == [30 * epoch, 60 * epoch, 80 * epoch]
    assert s.max_iter == 90 * epoch
    assert (s.lr_policy, s.gamma, s.weight_decay) == ("multistep", pytest.approx(0.1),
                                                      pytest.approx(1e-4))
    assert s.test_iter[0] * ranks * 50 >= 50_000
