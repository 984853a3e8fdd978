"""Helpers for testing layers and nets (usable by plugin authors): gradient checks, parity."""
from .gradient_check import check_gradient, make_layer, run_layer, setup_layer
from .nets import swap_data_for_input

__all__ = ["check_gradient", "make_layer", "run_layer", "setup_layer", "swap_data_for_input"]
