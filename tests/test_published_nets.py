"""Every published net in ../shared/conformance/nets parses, builds and runs forward+backward."""
import math

import numpy as np
import pytest

from dist_caffe import TEST, TRAIN, Net
from dist_caffe.proto import read_net_param, read_solver_param
from dist_caffe.testing import swap_data_for_input

from .conftest import SHARED

NETS = sorted(p.name for p in (SHARED / "conformance" / "nets").glob("*.prototxt")
              if "train_test" in p.name or "train_val" in p.name or p.name == "mnist__lenet.prototxt"
              or "deploy" in p.name) if SHARED.is_dir() else []
SOLVERS = sorted(p.name for p in (SHARED / "conformance" / "nets").glob("*solver*.prototxt")) \
    if SHARED.is_dir() else []


def image_shape(name):
    if name.startswith("mnist"):
        return (1, 28, 28)
    if name.startswith("cifar10"):
        return (3, 32, 32)
    return (3, 256, 256)


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("phase", [TRAIN, TEST])
def test_published_net_runs(conformance, name, phase):
    param = swap_data_for_input(read_net_param(str(conformance / "nets" / name)),
                                image_shape(name), batch=2)
    net = Net(param, phase)
    g = np.random.default_rng(0)
    for top in net.inputs:
        blob = net.blobs[top]
        if blob.num_axes == 1:  # labels
            blob.data[...] = g.integers(0, 10, blob.shape)
        else:
            blob.data[...] = g.standard_normal(blob.shape)
    net.forward()
    net.backward()
    for out in net.outputs:
        assert np.isfinite(net.blobs[out].data).all(), out
    if phase == TRAIN and "train" in name:
        assert net.blob_loss_weights and math.isfinite(net.loss)
        assert any(np.abs(b.diff).sum() > 0 for bl in net.params.values() for b in bl)


@pytest.mark.parametrize("name", SOLVERS)
def test_published_solver_parses(conformance, name):
    solver = read_solver_param(str(conformance / "nets" / name))
    assert solver.base_lr > 0 and solver.max_iter > 0
