"""HDF5Output: what reaches the layer lands in an HDF5 file."""
import h5py
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import make_layer, setup_layer


def test_hdf5_output_writes_and_appends_batches(tmp_path):
    path = tmp_path / "out.h5"
    layer = make_layer(f"type: 'HDF5Output' hdf5_output_param {{ file_name: '{path}' }}")
    g = np.random.default_rng(0)
    batches = [(g.standard_normal((2, 3)), np.array([1.0, 2.0])) for _ in range(2)]
    bottom, top = setup_layer(layer, list(batches[0]), num_top=0)
    for data, label in batches:
        bottom[0].data[...], bottom[1].data[...] = data, label
        layer.forward(bottom, top)
    layer.close()
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["data"][()], np.concatenate([b[0] for b in batches]))
        np.testing.assert_array_equal(f["label"][()], np.concatenate([b[1] for b in batches]))


def test_hdf5_output_passes_no_gradient(tmp_path):
    layer = make_layer(f"type: 'HDF5Output' hdf5_output_param {{ file_name: '{tmp_path / 'o.h5'}' }}")
    bottom, top = setup_layer(layer, [np.ones((2, 3)), np.ones(2)], num_top=0)
    bottom[0].diff[...] = 5
    layer.backward(top, [True, False], bottom)
    np.testing.assert_array_equal(bottom[0].diff, 0)
    layer.close()


def test_hdf5_output_bad_config_names_field(tmp_path):
    with pytest.raises(ConfigError, match="hdf5_output_param.file_name"):
        setup_layer(make_layer("type: 'HDF5Output'"), [np.ones((2, 3)), np.ones(2)], num_top=0)
    bad = f"type: 'HDF5Output' hdf5_output_param {{ file_name: '{tmp_path / 'no' / 'o.h5'}' }}"
    with pytest.raises(ConfigError, match="cannot create"):
        setup_layer(make_layer(bad), [np.ones((2, 3)), np.ones(2)], num_top=0)


@pytest.mark.gpu
def test_hdf5_output_writes_gpu_blobs(tmp_path):
    from dist_caffe import backend
    backend.set_mode_gpu()
    try:
        path = tmp_path / "gpu.h5"
        layer = make_layer(f"type: 'HDF5Output' hdf5_output_param {{ file_name: '{path}' }}")
        bottom, top = setup_layer(layer, [np.ones((2, 3)), np.array([1.0, 2.0])], num_top=0)
        layer.forward(bottom, top)
        layer.close()
        with h5py.File(path, "r") as f:
            np.testing.assert_array_equal(f["label"][()], [1.0, 2.0])
    finally:
        backend.set_mode_cpu()
