"""Caffe-style flags on argparse: `-solver x`, `--solver x` and `--solver=x` all work."""
import argparse
import re
import sys

_SINGLE_DASH_LONG = re.compile(r"^-([A-Za-z][A-Za-z0-9_]+)(=.*)?$")


def normalize(argv):
    """Rewrite gflags' single-dash long flags (-solver) as --solver for argparse."""
    out = []
    for token in argv:
        m = _SINGLE_DASH_LONG.match(token)
        out.append(f"-{token}" if m else token)
    return out


class UsageError(SystemExit):
    pass


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that takes Caffe-style flags and reports errors with the usage line."""

    def __init__(self, prog, description=None):
        super().__init__(prog=f"dist-caffe {prog}", description=description, allow_abbrev=False)

    def parse(self, argv):
        return self.parse_args(normalize(argv))

    def error(self, message):
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: error: {message}")
