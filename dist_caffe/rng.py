"""The process-wide random generator (fillers, dropout, data shuffling): one seed for all."""
import numpy as np

_state = {"gen": np.random.default_rng()}


def set_random_seed(seed: int):
    """Seed every random draw dist_caffe makes (Caffe's caffe.set_random_seed)."""
    _state["gen"] = np.random.default_rng(int(seed))


def generator() -> np.random.Generator:
    return _state["gen"]
