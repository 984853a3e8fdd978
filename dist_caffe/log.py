"""Logging set-up: Caffe's (glog's) line format, rank-0-only output, a tqdm bar on a terminal.

Lines look like Caffe's, `I0521 14:03:12.123456 12345 solver.py:218] Iteration 100, lr = 0.01`,
so log tools written for Caffe (its parse_log.py and extract_seconds.py, and ours) read them.
Only `dist-caffe` calls `setup`; a library user keeps whatever logging they configured.
"""
import datetime
import logging
import sys

LETTERS = {"DEBUG": "D", "INFO": "I", "WARNING": "W", "ERROR": "E", "CRITICAL": "F"}
_state = {"handler": None, "bar": None, "progress": False}


class CaffeFormatter(logging.Formatter):
    """`<L><mmdd> <hh:mm:ss.uuuuuu> <pid> <file>:<line>] <message>` (glog's prefix)."""

    def format(self, record):
        t = datetime.datetime.fromtimestamp(record.created)
        head = (f"{LETTERS.get(record.levelname, record.levelname[:1])}{t:%m%d %H:%M:%S}."
                f"{t.microsecond:06d} {record.process:>5} {record.filename}:{record.lineno}] ")
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return head + text


class RankFilter(logging.Filter):
    """On ranks other than 0, drop records below WARNING and tag the rest with the rank."""

    def __init__(self, rank, rank0_only=True):
        super().__init__()
        self.rank, self.rank0_only = rank, rank0_only

    def filter(self, record):
        if self.rank == 0:
            return True
        if self.rank0_only and record.levelno < logging.WARNING:
            return False
        record.msg = f"[rank {self.rank}] {record.msg}"
        return True


class _Handler(logging.Handler):
    """Writes to the current sys.stderr, through tqdm.write while a progress bar is shown."""

    def emit(self, record):
        try:
            line = self.format(record)
            if _state["bar"] is not None:
                _state["bar"].write(line, file=sys.stderr)
            else:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
        except Exception:
            self.handleError(record)


def setup(level="INFO", rank=0, rank0_only=True, progress=True):
    """Send dist_caffe's log to stderr in Caffe's format; `progress`: a bar when on a TTY."""
    logger = logging.getLogger("dist_caffe")
    if _state["handler"] is not None:
        logger.removeHandler(_state["handler"])
    handler = _Handler()
    handler.setFormatter(CaffeFormatter())
    handler.addFilter(RankFilter(rank, rank0_only))
    logger.addHandler(handler)
    logger.setLevel(level if isinstance(level, int) else str(level).upper())
    logger.propagate = False
    _state.update(handler=handler, progress=progress and rank == 0)
    return logger


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _Bar(_NoBar):
    def __init__(self, total, initial, desc):
        from tqdm import tqdm
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="iter", file=sys.stderr,
                        dynamic_ncols=True, leave=False)
        _state["bar"] = self.bar

    def update(self, n=1):
        self.bar.update(n)

    def close(self):
        if _state["bar"] is self.bar:
            _state["bar"] = None
        self.bar.close()


def progress(total, initial=0, desc="train"):
    """A tqdm bar over iterations when set up with progress and stderr is a terminal;
    otherwise an object whose update/close do nothing. Use as a context manager."""
    isatty = getattr(sys.stderr, "isatty", lambda: False)
    if not (_state["progress"] and isatty()):
        return _NoBar()
    return _Bar(total, initial, desc)
