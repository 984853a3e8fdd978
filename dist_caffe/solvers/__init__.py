"""Solvers (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam), lr policies, snapshots, the loop.

`get_solver(path)` builds the solver its `type` names (the legacy `solver_type` enum is
upgraded on reading); `SGDSolver(path)` and the other classes build that rule whatever the file
says, as pycaffe does.
"""
from ..errors import ConfigError
from .lr_policy import POLICIES, learning_rate
from .nets import load_solver_param
from .rules import (SOLVERS, AdaDeltaSolver, AdaGradSolver, AdamSolver, NesterovSolver,
                    RMSPropSolver, SGDSolver)
from .solver import Solver


def get_solver(param_or_path, comm=None, source=None):
    """The solver `type` names (SGD when unset), built from a solver prototxt or SolverParameter
    (`source`: the file a SolverParameter was read from, for messages and relative paths)."""
    param, source = load_solver_param(param_or_path, source)
    cls = SOLVERS.get(param.type)
    if cls is None:
        raise ConfigError(f"{source}: type: unknown solver type '{param.type}' (known: "
                          f"{', '.join(SOLVERS)}); type names are case-sensitive")
    return cls(param, comm=comm, source=source)


__all__ = ["AdaDeltaSolver", "AdaGradSolver", "AdamSolver", "NesterovSolver", "POLICIES",
           "RMSPropSolver", "SGDSolver", "SOLVERS", "Solver", "get_solver", "learning_rate"]
