"""ContrastiveLoss: current and legacy forms."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


SIM = np.array([0.0, 1.0, 0.0, 1.0, 0.0])


def pairs(seed=0):
    g = np.random.default_rng(seed)
    return g.standard_normal((5, 3)) * 0.7, g.standard_normal((5, 3)) * 0.7


def reference(a, b, y, margin, legacy):
    total = 0.0
    for n in range(len(a)):
        d2 = ((a[n] - b[n]) ** 2).sum()
        if y[n]:
            total += d2
        elif legacy:
            total += max(margin - d2, 0.0)
        else:
            total += max(margin - np.sqrt(d2), 0.0) ** 2
    return total / len(a) / 2


@pytest.mark.parametrize("legacy", [False, True])
def test_contrastive_loss_forward_matches_reference(legacy):
    a, b = pairs()
    text = f"type: 'ContrastiveLoss' contrastive_loss_param {{ margin: 2 legacy_version: {str(legacy).lower()} }}"
    (loss,) = run_layer(make_layer(text), [a, b, SIM])
    np.testing.assert_allclose(loss, reference(a, b, SIM, 2.0, legacy), rtol=1e-12)


@pytest.mark.parametrize("legacy", [False, True])
def test_contrastive_loss_gradient(legacy):
    a, b = pairs(1)
    text = f"type: 'ContrastiveLoss' contrastive_loss_param {{ margin: 2 legacy_version: {str(legacy).lower()} }}"
    # Caffe divides the dissimilar gradient by (d + 1e-4), not d: exact to ~1e-4 relative.
    check_gradient(make_layer(text), bottoms=[a, b, SIM], check_bottom=[0, 1],
                   threshold=1e-5 if legacy else 2e-3)


def test_contrastive_loss_bad_input_names_field():
    a, b = pairs()
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'ContrastiveLoss'"), [a, b[:, :2], SIM])
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'ContrastiveLoss'"), [a, b, SIM[:3]])
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'ContrastiveLoss'"), [a, b])


@pytest.mark.gpu
def test_contrastive_loss_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'ContrastiveLoss' contrastive_loss_param { margin: 2 }",
                          bottoms=[*pairs(2), SIM], propagate_down=[True, True, False])
