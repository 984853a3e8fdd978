"""HDF5Data: batches from HDF5 files named in a list file."""
import h5py
import numpy as np
import pytest

from dist_caffe import rng
from dist_caffe.errors import ConfigError, DataError
from dist_caffe.testing import make_layer, setup_layer


def write_files(tmp_path, rows=(5, 3)):
    """HDF5 files whose 'data' rows are (file, row, ...) and 'label' rows are 10 * file + row."""
    names = []
    for f, n in enumerate(rows):
        path = tmp_path / f"part{f}.h5"
        with h5py.File(path, "w") as h:
            data = np.zeros((n, 2, 3))
            data[:, 0, 0], data[:, 0, 1] = f, np.arange(n)
            h["data"] = data
            h["label"] = (10 * f + np.arange(n)).astype(np.int32)
        names.append(path.name)
    source = tmp_path / "list.txt"
    source.write_text("\n".join(names) + "\n")   # relative names: found beside the list
    return source


def layer_for(source, batch, shuffle=False):
    text = (f"type: 'HDF5Data' top: 'data' top: 'label' hdf5_data_param {{ source: '{source}' "
            f"batch_size: {batch} shuffle: {str(shuffle).lower()} }}")
    layer = make_layer(text)
    bottom, top = setup_layer(layer, [], num_top=2)
    return layer, bottom, top


def test_hdf5_data_reads_rows_in_order_across_files_and_wraps(tmp_path):
    layer, bottom, top = layer_for(write_files(tmp_path), batch=3)
    assert top[0].shape == (3, 2, 3) and top[1].shape == (3,)
    labels = []
    for _ in range(4):
        layer.forward(bottom, top)
        labels.extend(top[1].data.tolist())
        np.testing.assert_array_equal(top[0].data[:, 0, 0] * 10 + top[0].data[:, 0, 1], top[1].data)
    assert labels == [0, 1, 2, 3, 4, 10, 11, 12, 0, 1, 2, 3]


def test_hdf5_data_shuffle_visits_every_row_once_per_pass(tmp_path):
    rng.set_random_seed(3)
    layer, bottom, top = layer_for(write_files(tmp_path), batch=4, shuffle=True)
    labels = []
    for _ in range(2):
        layer.forward(bottom, top)
        labels.extend(int(v) for v in top[1].data)
    assert sorted(labels) == [0, 1, 2, 3, 4, 10, 11, 12]
    assert labels != sorted(labels)


def test_hdf5_data_missing_dataset_is_a_data_error(tmp_path):
    source = write_files(tmp_path)
    text = (f"type: 'HDF5Data' top: 'data' top: 'weights' hdf5_data_param {{ source: '{source}' "
            "batch_size: 2 }")
    with pytest.raises(DataError, match="weights"):
        setup_layer(make_layer(text), [], num_top=2)


def test_hdf5_data_bad_source(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        layer_for(tmp_path / "missing.txt", batch=2)
    (tmp_path / "list.txt").write_text("nowhere.h5\n")
    with pytest.raises(DataError, match="nowhere.h5"):
        layer_for(tmp_path / "list.txt", batch=2)
    with pytest.raises(ConfigError, match="hdf5_data_param.batch_size"):
        layer_for(write_files(tmp_path), batch=0)


@pytest.mark.gpu
def test_hdf5_data_fills_gpu_tops(tmp_path):
    from dist_caffe import backend
    backend.set_mode_gpu()
    try:
        layer, bottom, top = layer_for(write_files(tmp_path), batch=3)
        layer.forward(bottom, top)
        np.testing.assert_array_equal(backend.to_cpu(top[1].data), [0, 1, 2])
    finally:
        backend.set_mode_cpu()
