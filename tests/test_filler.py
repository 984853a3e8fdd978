"""Fillers: each type's statistics, the fan rules of xavier/msra, and Caffe's bilinear kernel."""
import numpy as np
import pytest

from dist_caffe import rng
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.filler import fill, fill_values
from dist_caffe.proto import caffe_pb2

FP = caffe_pb2.FillerParameter


def draw(shape, seed=0, **fields):
    return fill_values(FP(**fields), shape, np.random.default_rng(seed))


def test_constant_and_the_default():
    np.testing.assert_array_equal(draw((3, 4), type="constant", value=-2.5), np.full((3, 4), -2.5))
    np.testing.assert_array_equal(draw((5,)), np.zeros(5))  # FillerParameter() is constant 0


def test_uniform_range():
    x = draw((200, 100), type="uniform", min=-3, max=5)
    assert x.min() >= -3 and x.max() <= 5
    assert x.min() < -2.99 and x.max() > 4.99
    assert abs(x.mean() - 1) < 0.05 and abs(x.std() - 8 / np.sqrt(12)) < 0.03


def test_gaussian_mean_and_std():
    x = draw((200, 100), type="gaussian", mean=1.5, std=0.3)
    assert abs(x.mean() - 1.5) < 0.01 and abs(x.std() - 0.3) < 0.01


@pytest.mark.parametrize("sparse", [0, 5, 15])
def test_sparse_gaussian_keeps_sparse_over_num_outputs(sparse):
    x = draw((20, 1000), type="gaussian", std=1, sparse=sparse)
    fraction = np.count_nonzero(x) / x.size  # Caffe keeps each value with p = sparse / shape[0]
    assert abs(fraction - sparse / 20) < 0.01
    kept = x[x != 0]
    if sparse:
        assert abs(kept.std() - 1) < 0.05


@pytest.mark.parametrize("shape", [(6, 3, 2, 2), (10, 7), (8,)])
def test_positive_unitball_rows_sum_to_one(shape):
    x = draw(shape, type="positive_unitball")
    assert x.shape == shape and np.all(x >= 0) and np.all(x <= 1)
    np.testing.assert_allclose(x.reshape(shape[0], -1).sum(axis=1), 1.0, rtol=1e-12)


SHAPE = (200, 32, 3, 3)        # fan_in = 32*3*3 = 288, fan_out = 200*3*3 = 1800
FANS = {caffe_pb2.FillerParameter.FAN_IN: 288, caffe_pb2.FillerParameter.FAN_OUT: 1800,
        caffe_pb2.FillerParameter.AVERAGE: 1044}


@pytest.mark.parametrize("norm", sorted(FANS))
def test_xavier_scale(norm):
    x = draw(SHAPE, type="xavier", variance_norm=norm)
    scale = np.sqrt(3.0 / FANS[norm])
    assert np.abs(x).max() <= scale and np.abs(x).max() > 0.99 * scale
    assert abs(x.std() - scale / np.sqrt(3)) < 0.02 * scale


@pytest.mark.parametrize("norm", sorted(FANS))
def test_msra_scale(norm):
    x = draw(SHAPE, type="msra", variance_norm=norm)
    std = np.sqrt(2.0 / FANS[norm])
    assert abs(x.mean()) < 0.02 * std and abs(x.std() - std) < 0.02 * std


def test_xavier_default_is_fan_in_and_2d_fans():
    x = draw((40, 300), type="xavier")  # an InnerProduct weight: fan_in 300 (its columns)
    assert np.abs(x).max() <= np.sqrt(3 / 300) and np.abs(x).max() > 0.99 * np.sqrt(3 / 300)
    y = draw((40, 300), type="msra", variance_norm=caffe_pb2.FillerParameter.FAN_OUT)
    assert abs(y.std() - np.sqrt(2 / 40)) < 0.02 * np.sqrt(2 / 40)


def test_bilinear_4x4_by_hand():
    # f = ceil(4/2) = 2, c = (2f - 1 - f%2) / 2f = 0.75; 1 - |x/f - c| for x = 0..3:
    w = np.array([0.25, 0.75, 0.75, 0.25])
    x = draw((2, 3, 4, 4), type="bilinear")
    for kernel in x.reshape(-1, 4, 4):
        np.testing.assert_allclose(kernel, np.outer(w, w), rtol=1e-12)


def test_bilinear_odd_size_follows_caffe():
    # Caffe's formula for k = 3: f = 2, c = 0.75, weights 1 - |x/2 - 0.75| = 0.25, 0.75, 0.75.
    w = np.array([0.25, 0.75, 0.75])
    np.testing.assert_allclose(draw((1, 1, 3, 3), type="bilinear")[0, 0], np.outer(w, w), rtol=1e-12)


def test_fill_writes_the_blob_in_its_dtype_from_the_global_generator():
    blob = Blob((4, 5), np.float32)
    rng.set_random_seed(7)
    fill(blob, FP(type="gaussian", std=2))
    first = blob.data.copy()
    rng.set_random_seed(7)
    fill(blob, FP(type="gaussian", std=2))
    assert blob.data.dtype == np.float32 and np.all(first != 0)
    np.testing.assert_array_equal(blob.data, first)


def test_bad_fillers_are_config_errors():
    with pytest.raises(ConfigError, match="unknown filler type 'gausian'"):
        draw((2, 2), type="gausian")
    with pytest.raises(ConfigError, match="bilinear"):
        draw((2, 3, 4, 5), type="bilinear")
    with pytest.raises(ConfigError, match="bilinear"):
        draw((4, 4), type="bilinear")
