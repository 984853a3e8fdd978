"""DummyData: shapes (new and legacy), fillers per top, refill rule, bad configs."""
import numpy as np
import pytest

from dist_caffe import backend, rng
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.testing import make_layer, setup_layer


def test_default_filler_is_constant_zero_and_shape_for_all_tops():
    layer = make_layer("type: 'DummyData' top: 'a' top: 'b' dummy_data_param { shape { dim: 2 dim: 3 } }")
    bottom, top = setup_layer(layer, [])
    for t in top:
        t.data[...] = 5  # stale values: set-up writes the constant over them
    layer = make_layer("type: 'DummyData' top: 'a' top: 'b' dummy_data_param { shape { dim: 2 dim: 3 } }")
    layer.setup(bottom, top)
    assert [t.shape for t in top] == [(2, 3), (2, 3)]
    assert all(np.all(t.data == 0) for t in top)


def test_shape_per_top_and_filler_per_top():
    layer = make_layer("""type: 'DummyData' top: 'a' top: 'b'
        dummy_data_param { shape { dim: 4 dim: 5 } shape { dim: 3 }
                           data_filler { type: 'constant' value: 2.5 }
                           data_filler { type: 'uniform' min: 3 max: 4 } }""")
    bottom, top = setup_layer(layer, [])
    layer.forward(bottom, top)
    assert top[0].shape == (4, 5) and np.all(top[0].data == 2.5)
    assert top[1].shape == (3,) and np.all((top[1].data >= 3) & (top[1].data <= 4))


def test_legacy_shape_fields():
    layer = make_layer("""type: 'DummyData' top: 'a' top: 'b'
        dummy_data_param { num: 2 num: 5 channels: 3 height: 4 width: 1 width: 6 }""")
    _, top = setup_layer(layer, [])
    assert [t.shape for t in top] == [(2, 3, 4, 1), (5, 3, 4, 6)]


def test_constant_tops_are_filled_once_others_every_forward():
    layer = make_layer("""type: 'DummyData' top: 'c' top: 'g'
        dummy_data_param { shape { dim: 50 }
                           data_filler { type: 'constant' value: 1 }
                           data_filler { type: 'gaussian' std: 2 } }""")
    bottom, top = setup_layer(layer, [])
    top[0].data[...] = -3  # a constant top is not filled again
    rng.set_random_seed(5)
    layer.forward(bottom, top)
    first = top[1].data.copy()
    layer.forward(bottom, top)
    assert np.all(top[0].data == -3)
    assert not np.array_equal(first, top[1].data) and np.all(first != 0)
    rng.set_random_seed(5)
    layer.forward(bottom, top)
    np.testing.assert_array_equal(top[1].data, first)  # the draws come from the seeded generator


def test_one_non_constant_filler_for_all_tops():
    layer = make_layer("""type: 'DummyData' top: 'a' top: 'b'
        dummy_data_param { shape { dim: 2000 } data_filler { type: 'gaussian' mean: 1 std: 0.5 } }""")
    bottom, top = setup_layer(layer, [])
    layer.forward(bottom, top)
    for t in top:
        assert abs(t.data.mean() - 1) < 0.05 and abs(t.data.std() - 0.5) < 0.05
    assert not np.array_equal(top[0].data, top[1].data)


@pytest.mark.parametrize("text, field", [
    ("shape { dim: 2 } data_filler { } data_filler { }", "data_filler"),
    ("shape { dim: 2 } shape { dim: 3 }", "dummy_data_param.shape"),
    ("", "dummy_data_param.shape"),
    ("shape { dim: 2 } num: 2 channels: 1 height: 1 width: 1", "dummy_data_param"),
    ("num: 1 num: 2 channels: 1 height: 1 width: 1", "dummy_data_param.num"),
    ("num: 2 channels: 1 height: 1", "dummy_data_param.width"),
    ("shape { dim: -2 }", "dummy_data_param.shape"),
])
def test_bad_configs_name_the_field(text, field):
    layer = make_layer(f"type: 'DummyData' top: 'a' top: 'b' top: 'c' dummy_data_param {{ {text} }}")
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        setup_layer(layer, [])


@pytest.mark.gpu
@pytest.mark.skipif(not backend.has_gpu(), reason="no CUDA GPU")
def test_gpu_tops_are_filled():
    backend.set_mode_gpu()
    try:
        layer = make_layer("""type: 'DummyData' top: 'c' top: 'u'
            dummy_data_param { shape { dim: 3 dim: 4 }
                               data_filler { type: 'constant' value: 1.5 }
                               data_filler { type: 'uniform' min: -1 max: 1 } }""")
        top = [Blob((), np.float64), Blob((), np.float64)]
        layer.setup([], top)
        layer.run_forward([], top)
        c, u = (backend.to_cpu(t.data) for t in top)
        assert backend.is_gpu_array(top[0].data)
        assert np.all(c == 1.5) and np.all(np.abs(u) <= 1) and np.any(u != 0)
    finally:
        backend.set_mode_cpu()
