"""The solver on the GPU takes the same steps as on the CPU (runs only where a GPU is)."""
import numpy as np
import pytest

import dist_caffe as caffe

from .conftest import batches, feed_each_pass, write_solver


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"])
def test_gpu_steps_match_cpu(tmp_path, kind):
    momentum = "momentum: 0.9" if kind in ("SGD", "Nesterov") else ""
    text = (f'type: "{kind}" base_lr: 0.01 lr_policy: "fixed" weight_decay: 0.001 '
            f"clip_gradients: 1 iter_size: 2 {momentum}")
    path = write_solver(tmp_path, text, frozen=True)
    data = batches(8)
    runs = []
    for gpu in (False, True):
        caffe.set_mode_gpu() if gpu else caffe.set_mode_cpu()
        try:
            solver = caffe.get_solver(str(path))
            feed_each_pass(solver, data)
            solver.step(4)
            runs.append({k: caffe.backend.to_cpu(b.data).copy()
                         for k, bs in solver.net.params.items() for b in bs[:1]} |
                        {"history": caffe.backend.to_cpu(solver.history)})
        finally:
            caffe.set_mode_cpu()
    for key, value in runs[0].items():
        np.testing.assert_allclose(runs[1][key], value, rtol=1e-4, atol=1e-6, err_msg=key)
