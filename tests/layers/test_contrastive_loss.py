"""ContrastiveLoss: current and legacy forms."""
import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.errors import ConfigError
from dist_caffe.testing import check_gradient, make_layer, run_layer, setup_layer


def assert_cpu_gpu_parity(text, bottoms, down=None, seed=0):
    """Forward and backward of the layer `text` (float64) agree on the CPU and the GPU."""
    def run():
        layer = make_layer(text)
        bottom, top = setup_layer(layer, bottoms, seed=seed)
        layer.reshape(bottom, top)
        layer.run_forward(bottom, top)
        for k, t in enumerate(top):
            t.diff = np.random.default_rng(k).standard_normal(t.shape)
        flags = [True] * len(bottom) if down is None else down
        layer.run_backward(top, flags, bottom)
        arrays = [t.data for t in top] + [b.diff for b, f in zip(bottom, flags) if f]
        return [backend.to_cpu(a) for a in arrays + [b.diff for b in layer.blobs]]

    cpu = run()
    backend.set_mode_gpu()
    try:
        gpu = run()
    finally:
        backend.set_mode_cpu()
    for a, b in zip(cpu, gpu, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)

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
                          [*pairs(2), SIM], down=[True, True, False])
