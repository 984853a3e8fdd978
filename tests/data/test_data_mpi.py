"""Under mpiexec -n 2: each rank's Data layer reads its own shard (world() from MPI), and with
an odd DB size both ranks still get the same number of full batches per epoch."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from .util import image_db, random_images

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = """
import json, sys
from dist_caffe.parallel import set_world
from dist_caffe.parallel.factory import create
from tests.data.util import data_net
comm = create("mpi")
set_world(comm)
net = data_net(sys.argv[1], batch_size=5)
labels = [net.forward()["label"].astype(int).tolist() for _ in range(4)]
net.layers[0].close()
everyone = comm.allgather_object(labels)
if comm.rank == 0:
    json.dump(everyone, open(sys.argv[2], "w"))
"""


@pytest.mark.mpi
def test_two_ranks_read_disjoint_shards(tmp_path):
    if shutil.which("mpiexec") is None:
        pytest.skip("mpiexec not found (pip install 'dist_caffe[mpi]')")
    pytest.importorskip("mpi4py")
    db = image_db(tmp_path / "db", random_images(21, (1, 2, 2)))   # 21 records: 11 per rank
    (tmp_path / "job.py").write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    proc = subprocess.run(["mpiexec", "-n", "2", sys.executable, str(tmp_path / "job.py"), db,
                           str(tmp_path / "out.json")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rank0, rank1 = json.loads((tmp_path / "out.json").read_text())
    first_epoch = [sum(r, [])[:11] for r in (rank0, rank1)]
    assert first_epoch[0] == list(range(11))
    assert first_epoch[1] == list(range(11, 21)) + [0]     # padded with the epoch's first record
    assert len(sum(rank0, [])) == len(sum(rank1, [])) == 20   # 4 full batches each
