"""`dist-caffe data digits|fashion_mnist`, and the end-to-end runs of configs/ on them."""
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from dist_caffe import cli
from dist_caffe.data.datum import datum_to_array, parse_datum
from dist_caffe.data.lmdb_reader import LmdbReader
from dist_caffe.tools.datasets import FASHION_SRC, digits_split

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_db(path):
    reader = LmdbReader(path)
    pairs = [datum_to_array(parse_datum(v, "k")) for _, v in reader.next_records(reader.n)]
    return np.stack([a for a, _ in pairs]), np.array([y for _, y in pairs])


def test_digits_split_is_fixed_and_upsampled():
    a, b = digits_split(), digits_split()
    for split, n in (("train", 1437), ("test", 360)):
        images, labels = a[split]
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        np.testing.assert_array_equal(images, b[split][0])
        np.testing.assert_array_equal(labels, b[split][1])
        assert set(labels) == set(range(10))
        assert images.min() == 0 and images.max() >= 250
    from PIL import Image
    from sklearn.datasets import load_digits
    digits = load_digits()
    order = np.random.default_rng(1998).permutation(len(digits.images))   # the fixed split
    test_images, test_labels = a["test"]
    for k in range(20):
        source = digits.images[order[k]]
        assert test_labels[k] == digits.target[order[k]]
        small = np.asarray(Image.fromarray(test_images[k]).resize((8, 8), Image.BOX), float)
        assert np.corrcoef(small.ravel(), source.ravel())[0, 1] > 0.9   # the same picture
    train_set = {im.tobytes() for im in a["train"][0]}
    assert not any(im.tobytes() in train_set for im in test_images)  # no test image in train


def test_data_digits_writes_lmdbs_and_is_idempotent(tmp_path, capsys):
    out = tmp_path / "digits"
    assert cli.main(["data", "digits", "--out", str(out)]) == 0
    expected = digits_split()
    for split in ("train", "test"):
        images, labels = read_db(out / f"digits_{split}_lmdb")
        np.testing.assert_array_equal(images[:, 0], expected[split][0])
        np.testing.assert_array_equal(labels, expected[split][1])
    before = (out / "digits_test_lmdb" / "data.mdb").stat().st_mtime_ns
    assert cli.main(["data", "digits", "--out", str(out)]) == 0
    assert "already exist" in capsys.readouterr().out
    assert (out / "digits_test_lmdb" / "data.mdb").stat().st_mtime_ns == before
    assert cli.main(["data", "digits", "--out", str(out), "--force"]) == 0


def test_fashion_mnist_missing_files_say_how_to_install(tmp_path, capsys):
    assert cli.main(["data", "fashion_mnist", "--src", str(tmp_path), "--out",
                     str(tmp_path / "f")]) == 1
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


# -- end to end: dist-caffe train of configs/ on these data sets -------------------------

def train(tmp_path, solver, extra=()):
    """Run `dist-caffe train` from a folder laid out like the repo root; returns
    (final test accuracy, last iteration, wall seconds, log)."""
    (tmp_path / "configs").symlink_to(os.path.join(REPO, "configs"))
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.setdefault("OMP_NUM_THREADS", "1")   # small GEMMs: threads only contend
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "dist_caffe.cli", "train", "-solver",
                           f"configs/{solver}", *extra], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    wall = time.time() - start
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    accuracy = [float(x) for x in re.findall(r"Test net output #\d+: accuracy = ([\d.e+-]+)", log)]
    iters = [int(x) for x in re.findall(r"Iteration (\d+)", log)]
    assert accuracy, log[-3000:]
    return accuracy[-1], max(iters), wall, log


@pytest.mark.slow
def test_lenet_on_digits_reaches_97_percent(tmp_path):
    assert cli.main(["data", "digits", "--out", str(tmp_path / "data" / "digits")]) == 0
    accuracy, iters, wall, _ = train(tmp_path, "lenet_digits_solver.prototxt")
    print(f"LeNet on digits: test accuracy {accuracy:.4f} after {iters} iterations, {wall:.0f} s")
    assert accuracy >= 0.97
    assert (tmp_path / "data" / "digits" / f"lenet_digits_iter_{iters}.caffemodel").exists()


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(FASHION_SRC), reason="Fashion-MNIST not installed "
                    "(apt-get install dataset-fashion-mnist; .ci/run does)")
def test_lenet_on_fashion_mnist_reaches_89_percent(tmp_path):
    assert cli.main(["data", "fashion_mnist", "--out", str(tmp_path / "data" / "fashion_mnist")]) == 0
    accuracy, iters, wall, _ = train(tmp_path, "lenet_fashion_solver.prototxt")
    print(f"LeNet on Fashion-MNIST: test accuracy {accuracy:.4f} after {iters} iterations, "
          f"{wall:.0f} s")
    assert accuracy >= 0.89
