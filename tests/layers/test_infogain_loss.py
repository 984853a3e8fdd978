"""InfogainLoss: H-weighted log loss; H from a file or a bottom."""
import numpy as np
import pytest

from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.layers.infogain_loss import InfogainLossLayer
from dist_caffe.proto import write_binary
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


LABEL = np.array([0.0, 3.0, 1.0])
H = np.random.default_rng(9).uniform(0, 1, (4, 4))


def probabilities(shape=(3, 4), seed=0):
    p = np.random.default_rng(seed).uniform(0.1, 1.0, shape)
    return p / p.sum(1, keepdims=True)


def reference(p, label, h, ignore=None, axis=1):
    """-sum_i sum_k H[l_i, k] log p_ik / (number of counted positions)."""
    moved = np.moveaxis(p, axis, -1).reshape(-1, p.shape[axis])
    labels = label.reshape(-1)
    total, count = 0.0, 0
    for row, lab in zip(moved, labels):
        if ignore is not None and lab == ignore:
            continue
        total -= (h[int(lab)] * np.log(np.maximum(row, 1e-20))).sum()
        count += 1
    return total / max(count, 1)


def test_infogain_loss_with_h_as_bottom_matches_reference():
    p = probabilities()
    (loss,) = run_layer(make_layer("type: 'InfogainLoss'"), [p, LABEL, H.reshape(1, 1, 4, 4)])
    np.testing.assert_allclose(loss, reference(p, LABEL, H), rtol=1e-12)


def test_infogain_loss_reads_h_from_a_blobproto_file(tmp_path):
    blob = Blob((1, 1, 4, 4), np.float32)
    blob.data[...] = H.reshape(1, 1, 4, 4)
    write_binary(blob.to_proto(), tmp_path / "H.binaryproto")
    p = probabilities()
    text = f"type: 'InfogainLoss' infogain_loss_param {{ source: '{tmp_path / 'H.binaryproto'}' }}"
    (loss,) = run_layer(make_layer(text), [p, LABEL])
    np.testing.assert_allclose(loss, reference(p, LABEL, H.astype(np.float32)), rtol=1e-6)


def test_infogain_loss_identity_is_multinomial_logistic_loss():
    p = probabilities(seed=1)
    (a,) = run_layer(make_layer("type: 'InfogainLoss'"), [p, LABEL, np.eye(4)])
    (b,) = run_layer(make_layer("type: 'MultinomialLogisticLoss'"), [p, LABEL])
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_infogain_loss_axis_and_ignore_label():
    p = np.random.default_rng(2).uniform(0.1, 1, (2, 4, 3))
    p /= p.sum(1, keepdims=True)
    label = np.array([[0.0, 2.0, 3.0], [1.0, 2.0, 0.0]])
    text = "type: 'InfogainLoss' loss_param { ignore_label: 2 }"
    (loss,) = run_layer(make_layer(text), [p, label, H])
    np.testing.assert_allclose(loss, reference(p, label, H, ignore=2), rtol=1e-12)


@pytest.mark.parametrize("with_ignore", [False, True])
def test_infogain_loss_gradient(with_ignore):
    p = np.random.default_rng(3).uniform(0.1, 1, (2, 4, 3))
    p /= p.sum(1, keepdims=True)
    label = np.array([[0.0, 2.0, 3.0], [1.0, 2.0, 0.0]])
    text = "type: 'InfogainLoss' loss_weight: 0.8" + (" loss_param { ignore_label: 2 }" if with_ignore else "")
    check_gradient(make_layer(text), bottoms=[p, label, H], check_bottom=[0], step=1e-7)


def test_infogain_loss_softmax_inside_variant(monkeypatch):
    """Later BVLC master applies the softmax inside the layer; the switch gives that form."""
    monkeypatch.setattr(InfogainLossLayer, "softmax_inside", True)
    x = np.random.default_rng(4).standard_normal((3, 4))
    e = np.exp(x - x.max(1, keepdims=True))
    (loss,) = run_layer(make_layer("type: 'InfogainLoss'"), [x, LABEL, H])
    np.testing.assert_allclose(loss, reference(e / e.sum(1, keepdims=True), LABEL, H), rtol=1e-12)
    check_gradient(make_layer("type: 'InfogainLoss'"), bottoms=[x, LABEL, H], check_bottom=[0])


def test_infogain_loss_bad_config_names_field(tmp_path):
    with pytest.raises(ConfigError, match="infogain_loss_param.source"):
        setup_layer(make_layer("type: 'InfogainLoss'"), [probabilities(), LABEL])
    missing = f"type: 'InfogainLoss' infogain_loss_param {{ source: '{tmp_path / 'none'}' }}"
    with pytest.raises(ConfigError, match="infogain_loss_param.source"):
        setup_layer(make_layer(missing), [probabilities(), LABEL])
    with pytest.raises(ConfigError, match="4x4"):
        setup_layer(make_layer("type: 'InfogainLoss'"), [probabilities(), LABEL, np.eye(3)])
    with pytest.raises(ConfigError, match="infogain_loss_param.axis"):
        setup_layer(make_layer("type: 'InfogainLoss' infogain_loss_param { axis: 2 }"),
                    [probabilities(), LABEL, H])


@pytest.mark.gpu
def test_infogain_loss_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'InfogainLoss'", bottoms=[probabilities(), LABEL, H],
                          propagate_down=[True, False, False])
