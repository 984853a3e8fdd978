"""HingeLoss: one-vs-all hinge, L1 and L2."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError, DataError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


LABEL = np.array([0.0, 3.0, 1.0])


def reference(x, label, norm):
    total = 0.0
    for n in range(x.shape[0]):
        for k in range(x.shape[1]):
            d = 1.0 if k == label[n] else -1.0
            m = max(0.0, 1 - d * x[n, k])
            total += m if norm == "L1" else m * m
    return total / x.shape[0]


@pytest.mark.parametrize("norm", ["L1", "L2"])
def test_hinge_loss_forward_matches_reference(norm):
    x = np.random.default_rng(0).standard_normal((3, 5))
    (loss,) = run_layer(make_layer(f"type: 'HingeLoss' hinge_loss_param {{ norm: {norm} }}"), [x, LABEL])
    np.testing.assert_allclose(loss, reference(x, LABEL, norm), rtol=1e-12)


def away_from_margin(shape):
    x = np.random.default_rng(1).standard_normal(shape)
    return np.where(np.abs(np.abs(x) - 1) < 0.01, x * 1.1, x)


@pytest.mark.parametrize("norm", ["L1", "L2"])
@pytest.mark.parametrize("shape", [(3, 5), (3, 2, 2)])
def test_hinge_loss_gradient(norm, shape):
    layer = make_layer(f"type: 'HingeLoss' loss_weight: 0.5 hinge_loss_param {{ norm: {norm} }}")
    check_gradient(layer, bottoms=[away_from_margin(shape), LABEL], check_bottom=[0])


def test_hinge_loss_bad_input():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'HingeLoss'"), [np.ones((3, 5)), np.ones((3, 2))])
    with pytest.raises(DataError, match="label"):
        run_layer(make_layer("type: 'HingeLoss'"), [np.ones((3, 5)), np.array([0.0, 5.0, 1.0])])


@pytest.mark.gpu
@pytest.mark.parametrize("norm", ["L1", "L2"])
def test_hinge_loss_cpu_gpu_parity(norm):
    assert_cpu_gpu_parity(f"type: 'HingeLoss' hinge_loss_param {{ norm: {norm} }}",
                          bottoms=[away_from_margin((3, 5)), LABEL], propagate_down=[True, False])
