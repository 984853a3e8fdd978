"""`dist-caffe parse_log LOG [OUT_DIR]` and `dist-caffe plot LOG [-o curves.png]`.

Reads training logs in Caffe's wording (ours or BVLC Caffe's): `Iteration N, lr = r`,
`Train net output #k: name = v`, `Iteration N, Testing net (#t)`, `Test net output #k: name = v`,
with glog's time prefix for the Seconds column (counted from the `Solving` line). parse_log
writes <LOG name>.train and <LOG name>.test, CSV files with columns NumIters, Seconds,
LearningRate and one per output, as Caffe's tools/extra/parse_log.py; plot draws every output
against iterations (train and test on the same axes) with matplotlib.
"""
import csv
import datetime
import math
import os
import re

from .flags import Parser

ITERATION = re.compile(r"Iteration (\d+)")
LR = re.compile(r"Iteration (\d+), lr = ([-+\w.]+)")
TESTING = re.compile(r"Iteration (\d+), Testing net \(#(\d+)\)")
TRAIN_OUT = re.compile(r"Train net output #\d+: (\S+) = ([-+\w.]+)")
TEST_OUT = re.compile(r"Test net output #\d+: (\S+) = ([-+\w.]+)")
STAMP = re.compile(r"^[IWEFD](\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})")


def _time(line, last):
    """Datetime of a glog line (year 2000, a leap year; a new year when time runs backwards)."""
    m = STAMP.match(line)
    if not m:
        return None
    month, day, hour, minute, second, micro = (int(g) for g in m.groups())
    t = datetime.datetime(2000, month, day, hour, minute, second, micro)
    while last is not None and t < last - datetime.timedelta(days=1):
        t = t.replace(year=t.year + 1)
    return t


def parse_log(lines):
    """(train rows, test rows): lists of dicts with NumIters, Seconds, LearningRate, outputs."""
    train, test = {}, {}
    iteration, test_net, start, last = None, 0, None, None
    for line in lines:
        t = _time(line, last)
        last = t or last
        if start is None and t is not None and "Solving" in line:
            start = t
        seconds = (t - start).total_seconds() if t is not None and start is not None else math.nan
        m = ITERATION.search(line)
        if m:
            iteration = int(m.group(1))
        if iteration is None:
            continue
        if (m := TESTING.search(line)):
            test_net = int(m.group(2))
        elif (m := LR.search(line)):
            _row(train, iteration, seconds)["LearningRate"] = float(m.group(2))
        elif (m := TRAIN_OUT.search(line)):
            _row(train, iteration, seconds)[m.group(1)] = float(m.group(2))
        elif (m := TEST_OUT.search(line)):
            name = m.group(1) if test_net == 0 else f"{m.group(1)}#{test_net}"
            row = _row(test, iteration, seconds)
            row[name] = float(m.group(2))
    lr = math.nan
    for it in sorted(train):   # the lr line follows the outputs; carry it to test rows too
        lr = train[it].get("LearningRate", lr)
        train[it]["LearningRate"] = lr
    for it in sorted(test):
        earlier = [i for i in train if i <= it]
        test[it]["LearningRate"] = train[max(earlier)]["LearningRate"] if earlier else math.nan
    return [train[i] for i in sorted(train)], [test[i] for i in sorted(test)]


def _row(table, iteration, seconds):
    if iteration not in table:
        table[iteration] = {"NumIters": iteration, "Seconds": seconds, "LearningRate": math.nan}
    return table[iteration]


def write_csv(rows, path, delimiter=","):
    """Rows as CSV: NumIters, Seconds, LearningRate, then every output name in first-seen order."""
    columns = ["NumIters", "Seconds", "LearningRate"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if _missing(row.get(c)) else row[c] for c in columns])


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def plot(train, test, path, title=""):
    """One panel per output name (train and test curves together) plus the learning rate."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    skip = {"NumIters", "Seconds", "LearningRate"}
    names = list(dict.fromkeys(k for row in train + test for k in row if k not in skip))
    has_lr = any(not _missing(r["LearningRate"]) for r in train)
    panels = names + (["LearningRate"] if has_lr else [])
    fig, axes = plt.subplots(len(panels) or 1, 1, figsize=(8, 3 * max(len(panels), 1)),
                             sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], panels):
        for rows, label in ((train, "train"), (test, "test")):
            points = [(r["NumIters"], r[name]) for r in rows if not _missing(r.get(name))]
            if points:
                ax.plot(*zip(*points), label=f"{label} {name}",
                        marker="." if len(points) < 50 else None)
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
    axes[-1, 0].set_xlabel("iterations")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _read(path):
    from ..errors import ConfigError
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the log ({e.strerror})") from None


def main(argv):
    verb, rest = argv[0], argv[1:]
    p = Parser(verb, "CSV of a training log" if verb == "parse_log" else "PNG of training curves")
    p.add_argument("logfile", help="a training log (stderr of dist-caffe train or caffe train)")
    if verb == "parse_log":
        p.add_argument("output_dir", nargs="?", default=None,
                       help="where <log>.train and <log>.test go (default: beside the log)")
        p.add_argument("--delimiter", default=",", help="CSV delimiter (default ,)")
    else:
        p.add_argument("-o", "--output", default=None, help="PNG path (default: <log>.png)")
    args = p.parse(rest)
    train, test = parse_log(_read(args.logfile))
    if not train and not test:
        from ..errors import ConfigError
        raise ConfigError(f"{args.logfile}: no 'Iteration N' lines with outputs; is it a training "
                          "log (stderr of dist-caffe train)?")
    if verb == "parse_log":
        out = args.output_dir or os.path.dirname(os.path.abspath(args.logfile))
        base = os.path.join(out, os.path.basename(args.logfile))
        write_csv(train, base + ".train", args.delimiter)
        write_csv(test, base + ".test", args.delimiter)
        print(f"wrote {base}.train ({len(train)} rows) and {base}.test ({len(test)} rows)")
    else:
        path = args.output or os.path.splitext(args.logfile)[0] + ".png"
        plot(train, test, path, title=os.path.basename(args.logfile))
        print(f"wrote {path}")
    return 0
