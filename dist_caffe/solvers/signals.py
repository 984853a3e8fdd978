"""SIGINT / SIGHUP during training, as Caffe's SignalHandler (-sigint_effect, -sighup_effect).

A signal only records a request; the solver polls it between iterations (and between test
batches) through `solver.action_request`, so a snapshot is never taken mid-update. Effects:
`stop` (finish the iteration, snapshot if snapshot_after_train, exit), `snapshot` (snapshot and
go on), `none` (ignore the signal). A second SIGINT while a `stop` is still pending raises
KeyboardInterrupt, for a run stuck inside one iteration.
"""
import contextlib
import signal

from ..errors import ConfigError

EFFECTS = ("stop", "snapshot", "none")


class SignalHandler:
    """Callable: returns the pending action ("stop", "snapshot" or "none") and clears it."""

    def __init__(self, sigint_effect="stop", sighup_effect="snapshot"):
        for flag, effect in (("sigint_effect", sigint_effect), ("sighup_effect", sighup_effect)):
            if effect not in EFFECTS:
                raise ConfigError(f"-{flag}: found '{effect}', expected one of "
                                  f"{', '.join(EFFECTS)}")
        self.effects = {signal.SIGINT: sigint_effect}
        if hasattr(signal, "SIGHUP"):
            self.effects[signal.SIGHUP] = sighup_effect
        self.pending = {}

    def _on_signal(self, signum, frame):
        if signum == signal.SIGINT and self.pending.get(signum) and self.effects[signum] == "stop":
            raise KeyboardInterrupt
        self.pending[signum] = True

    def __call__(self):
        for signum, effect in self.effects.items():
            if self.pending.pop(signum, False):
                return effect
        return "none"

    @contextlib.contextmanager
    def installed(self):
        """Catch the signals inside the block (main thread only), restoring the old handlers."""
        previous = {s: signal.signal(s, self._on_signal) for s in self.effects}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
