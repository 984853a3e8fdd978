"""Learning-rate policies: the rate of update `iter` from SolverParameter fields.

Reads base_lr, lr_policy, gamma, power, stepsize, stepvalue, max_iter. As in Caffe, the rate of
update k is computed from the iteration count *before* that update (k = 0 first), and
`multistep` advances its position (`current_step`, saved in the .solverstate) by at most one
stepvalue per call, so a restored schedule continues where it was.
"""
import math

from ..errors import ConfigError

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")


def check_policy(param, where="solver"):
    """ConfigError when lr_policy is unknown or lacks a field it needs."""
    policy = param.lr_policy
    if policy not in POLICIES:
        raise ConfigError(f"{where}: lr_policy: unknown policy '{policy}' (known: "
                          f"{', '.join(POLICIES)})" + ("; set lr_policy" if not policy else ""))
    if policy == "step" and param.stepsize <= 0:
        raise ConfigError(f"{where}: lr_policy 'step' needs stepsize > 0, found {param.stepsize}")
    if policy in ("step", "exp", "inv") and param.gamma < 0:
        raise ConfigError(f"{where}: lr_policy '{policy}' needs gamma >= 0, found {param.gamma:g}")
    if policy == "poly" and param.max_iter <= 0:
        raise ConfigError(f"{where}: lr_policy 'poly' needs max_iter > 0, found {param.max_iter}")
    if policy == "multistep":
        values = list(param.stepvalue)
        if not values:
            raise ConfigError(f"{where}: lr_policy 'multistep' needs at least one stepvalue")
        if values != sorted(values):
            raise ConfigError(f"{where}: stepvalue must be increasing, found {values}")


def learning_rate(param, it, current_step=0):
    """(rate, current_step) of the update made at iteration `it` (0-based)."""
    policy, base, gamma, power = param.lr_policy, param.base_lr, param.gamma, param.power
    if policy == "fixed":
        return base, current_step
    if policy == "step":
        current_step = it // param.stepsize
        return base * gamma ** current_step, current_step
    if policy == "exp":
        return base * gamma ** it, current_step
    if policy == "inv":
        return base * (1.0 + gamma * it) ** (-power), current_step
    if policy == "multistep":
        if current_step < len(param.stepvalue) and it >= param.stepvalue[current_step]:
            current_step += 1
        return base * gamma ** current_step, current_step
    if policy == "poly":
        return base * (1.0 - it / param.max_iter) ** power, current_step
    if policy == "sigmoid":
        return base / (1.0 + math.exp(-gamma * (it - param.stepsize))), current_step
    raise ConfigError(f"unknown lr_policy '{policy}' (known: {', '.join(POLICIES)})")
