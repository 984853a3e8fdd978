"""Launchers: how data-parallel replicas are started and wired (shipped as dist_caffe.launch).

* `mpi` — under `mpirun`/`mpiexec`/`srun`: one process per device, rank and size from MPI
  (checked against the launcher's environment), the communicator set as `world()`.
* `ray_launcher` — `dist-caffe train ... --launcher ray --num-workers N`: one Ray actor per
  device in a placement group, logs streamed to the driver, the job fails cleanly if an
  actor dies.

`dist-caffe train` picks the launcher itself (dist_caffe.parallel.trainer.main).
"""
