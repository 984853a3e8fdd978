"""Helpers for testing layers and nets (usable by plugin authors): gradient checks, parity."""
from .gradient_check import check_gradient, make_layer, run_layer, setup_layer
from .nets import swap_data_for_input
from .parity import assert_cpu_gpu_parity

__all__ = ["assert_cpu_gpu_parity", "check_gradient", "make_layer", "run_layer", "setup_layer", "swap_data_for_input"]
