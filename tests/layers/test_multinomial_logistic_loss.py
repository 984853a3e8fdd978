"""MultinomialLogisticLoss: -log p[label] on probabilities."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError, DataError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


LABEL = np.array([0.0, 3.0, 1.0])


def probabilities(shape=(3, 4), seed=0):
    p = np.random.default_rng(seed).uniform(0.1, 1.0, shape)
    return p / p.reshape(shape[0], -1).sum(1).reshape((-1,) + (1,) * (len(shape) - 1))


def test_multinomial_logistic_loss_matches_numpy():
    p = probabilities()
    p[2, 1] = 0  # clamped at 1e-20, not -inf
    (loss,) = run_layer(make_layer("type: 'MultinomialLogisticLoss'"), [p, LABEL])
    picked = np.maximum(p[np.arange(3), LABEL.astype(int)], 1e-20)
    np.testing.assert_allclose(loss, -np.log(picked).sum() / 3, rtol=1e-12)


@pytest.mark.parametrize("shape", [(3, 4), (3, 2, 2)])
def test_multinomial_logistic_loss_gradient(shape):
    layer = make_layer("type: 'MultinomialLogisticLoss' loss_weight: 0.3")
    check_gradient(layer, bottoms=[probabilities(shape), LABEL], check_bottom=[0], step=1e-7)


def test_multinomial_logistic_loss_bad_input():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'MultinomialLogisticLoss'"), [probabilities(), np.ones((3, 2))])
    with pytest.raises(DataError, match="label"):
        run_layer(make_layer("type: 'MultinomialLogisticLoss'"), [probabilities(), np.array([0, 4.0, 1])])


@pytest.mark.gpu
def test_multinomial_logistic_loss_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'MultinomialLogisticLoss'", bottoms=[probabilities(), LABEL],
                          propagate_down=[True, False])
