"""python -m dist_caffe.tools.bench_data [--records N] [--batches N] [--workers 1,2] [--cifar N]

A benchmark of the input pipeline (not a test). On synthetic LMDBs in a temporary folder:

1. raw 1 x 28 x 28 records (MNIST-like; scale), batch 64, read + transform in the thread;
2. encoded 256 x 256 JPEG records, random crop 227 + mirror + mean_value + scale, batch 32,
   with each number of decode worker processes in --workers; next to it, Pillow decoding
   the same JPEG bytes to arrays in a tight loop in one process (the reference rate);
3. raw 3 x 32 x 32 records with a mean file and mirror, batch 100 (CIFAR-10's pipeline), and
   CIFAR-10 quick (configs/) trained for --cifar iterations on them (--gpu: on the GPU):
   the time the training thread blocked on the prefetch queue per iteration.

The consumer of 1 and 2 is Net.forward of a net holding only the Data layer (so the copy
into the top blob counts), as fast as it can go after a warm-up. records/s counts images
delivered; MB/s in is LMDB value bytes read, MB/s out is float32 bytes delivered.
"""
import io
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from .. import Net, TRAIN, set_mode_gpu, set_random_seed
from ..data import options
from ..data.datum import array_to_datum, encoded_datum
from ..data.lmdb_writer import LmdbWriter, record_key
from ..proto import caffe_pb2, parse_text, read_net_param, read_solver_param, write_binary
from .compute_image_mean import mean_blob
from .flags import Parser


def synthetic_jpegs(n, size=256, quality=90, seed=0):
    """n distinct photo-like JPEGs: smooth colour fields, shapes and sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        f = rng.uniform(1, 6, (3, 2))
        img = np.stack([128 + 100 * np.sin(f[c, 0] * x * np.pi + f[c, 1] * y * 3)
                        for c in range(3)], -1)
        cy, cx, r = rng.uniform(0.2, 0.8, 3) * [1, 1, 0.4]
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] *= rng.uniform(0.3, 1.2)
        img += rng.normal(0, 12, img.shape)
        buf = io.BytesIO()
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
        out.append(buf.getvalue())
    return out


def write_db(path, datums):
    with LmdbWriter(path) as db:
        for i, datum in enumerate(datums):
            db.put(record_key(i), datum.SerializeToString())
    return path


def pillow_rate(jpegs, seconds=1.5):
    """(images/s, CPU s per image) of Pillow decoding JPEG bytes to RGB arrays, back to back."""
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for b in jpegs:
            np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))
        count += len(jpegs)
    return count / (time.perf_counter() - start), (time.process_time() - cpu) / count


def _cpu_seconds(pids):
    """User + system CPU seconds used so far by these processes (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def pipeline_rate(db, batch_size, transform, batches, workers, record_bytes):
    """records/s, MB/s in and out, mean wait per batch, and the decode workers' CPU seconds
    per record, of Net.forward over a Data-only net."""
    options.configure(decode_workers=workers)
    set_random_seed(0)
    net = Net(parse_text(f'layer {{ name: "data" type: "Data" top: "data" top: "label" '
                         f'data_param {{ source: "{db}" batch_size: {batch_size} prefetch: 4 }} '
                         f'transform_param {{ {transform} }} }}', caffe_pb2.NetParameter), TRAIN)
    layer = net.layers[0]
    pids = [p.pid for p in layer.prefetcher.pool._pool] if layer.prefetcher.pool else []
    for _ in range(8):       # warm-up: workers started, queue filled once
        net.forward()
    waited, start, cpu = layer.prefetcher.wait_s, time.perf_counter(), _cpu_seconds(pids)
    main_cpu = time.process_time()
    for _ in range(batches):
        net.forward()
    elapsed, main_cpu = time.perf_counter() - start, time.process_time() - main_cpu
    n = batch_size * batches
    result = {"rate": n / elapsed, "mb_in": n * record_bytes / elapsed / 1e6,
              "mb_out": net.blobs["data"].count * 4 * batches / elapsed / 1e6,
              "wait": (layer.prefetcher.wait_s - waited) / batches,
              "worker_cpu": (_cpu_seconds(pids) - cpu) / n if pids else None,
              "main_cpu": main_cpu / n}
    layer.close()
    options.configure(decode_workers=None)
    return result


def cifar_quick_waits(db, mean, iterations):
    """Per-iteration time blocked on the data queue while training configs/ CIFAR-10 quick
    (reading `db` with mean file `mean`), and the iteration times."""
    from ..solvers import get_solver
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    net = read_net_param(os.path.join(repo, "configs", "cifar10_quick_train_test.prototxt"))
    for layer in net.layer:
        if layer.type == "Data":
            layer.data_param.source = db
            layer.transform_param.mean_file = mean
    solver = read_solver_param(os.path.join(repo, "configs", "cifar10_quick_solver.prototxt"))
    solver.ClearField("net")
    solver.net_param.CopyFrom(net)
    solver.test_interval, solver.display, solver.snapshot = 0, 0, 0
    solver.snapshot_after_train = False
    solver.ClearField("test_iter")
    s = get_solver(solver)
    prefetcher = s.net.layers[0].prefetcher
    s.step(5)                                        # warm-up
    waits, times = [], []
    for _ in range(iterations):
        before, start = prefetcher.wait_s, time.perf_counter()
        s.step(1)
        times.append(time.perf_counter() - start)
        waits.append(prefetcher.wait_s - before)
    prefetcher.close()
    return np.array(waits), np.array(times)


def main(argv=None):
    p = Parser("bench_data", "Benchmark the data pipeline (see the module docstring).")
    p.add_argument("--records", type=int, default=512, help="JPEG records in the DB")
    p.add_argument("--batches", type=int, default=40, help="timed batches per configuration")
    p.add_argument("--workers", default="1,2", help="decode worker counts to time")
    p.add_argument("--repeat", type=int, default=3, help="runs of each timing (best is shown)")
    p.add_argument("--cifar", type=int, default=50, help="CIFAR-quick iterations (0: skip)")
    p.add_argument("--gpu", action="store_true", help="train CIFAR-quick on the GPU")
    args = p.parse(sys.argv[1:] if argv is None else argv)
    if args.gpu:
        set_mode_gpu()
    print(f"CPUs: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        raw = write_db(os.path.join(folder, "raw28"), (array_to_datum(
            rng.integers(0, 256, (1, 28, 28), dtype=np.uint8), i % 10) for i in range(10000)))
        size = len(array_to_datum(np.zeros((1, 28, 28), np.uint8), 9).SerializeToString())
        r = pipeline_rate(raw, 64, "scale: 0.00390625", args.batches * 10, 0, size)
        print(f"raw 28x28, batch 64, in the prefetch thread: {r['rate']:.0f} records/s, "
              f"{r['mb_in']:.1f} MB/s in, {r['mb_out']:.1f} MB/s out, "
              f"wait/batch {r['wait'] * 1e3:.2f} ms")
        cifar = write_db(os.path.join(folder, "raw32"), (array_to_datum(
            rng.integers(0, 256, (3, 32, 32), dtype=np.uint8), i % 10) for i in range(10000)))
        mean = os.path.join(folder, "mean32.binaryproto")
        write_binary(mean_blob(np.full((3, 32, 32), 120.0)), mean)
        size = len(array_to_datum(np.zeros((3, 32, 32), np.uint8), 9).SerializeToString())
        r = pipeline_rate(cifar, 100, f'mean_file: "{mean}" mirror: true', args.batches * 5,
                          0, size)
        print(f"raw 3x32x32 (CIFAR), mean_file + mirror, batch 100, in the prefetch thread: "
              f"{r['rate']:.0f} records/s = {r['rate'] / 100:.0f} batches/s, "
              f"{r['mb_in']:.1f} MB/s in, {r['mb_out']:.1f} MB/s out")
        jpegs = synthetic_jpegs(args.records)
        jpeg_db = write_db(os.path.join(folder, "jpeg256"),
                           (encoded_datum(b, i % 1000) for i, b in enumerate(jpegs)))
        mean_bytes = float(np.mean([len(b) for b in jpegs]))
        transform = ("crop_size: 227 mirror: true mean_value: 104 mean_value: 117 "
                     "mean_value: 123 scale: 0.017")
        # Reference and pipeline alternate, best of --repeat each: this machine may be shared.
        refs, runs = [], {int(w): [] for w in args.workers.split(",")}
        for _ in range(args.repeat):
            refs.append(pillow_rate(jpegs))
            for workers in runs:
                runs[workers].append(pipeline_rate(jpeg_db, 32, transform, args.batches,
                                                   workers, mean_bytes))
        ref, ref_cpu = max(refs)[0], min(c for _, c in refs)
        print(f"Pillow decoding the same 256x256 JPEGs (mean {mean_bytes / 1e3:.1f} kB) to RGB "
              f"arrays, tight loop, 1 process: {ref:.0f} images/s, {ref_cpu * 1e3:.3f} ms CPU "
              "per image")
        for workers, results in runs.items():
            r = max(results, key=lambda x: x["rate"])
            cpu = min(x["worker_cpu"] for x in results)
            main_cpu = min(x["main_cpu"] for x in results)
            print(f"JPEG 256 -> crop 227 + mirror + mean + scale, batch 32, {workers} decode "
                  f"worker(s): {r['rate']:.0f} records/s = {100 * r['rate'] / ref:.1f}% of "
                  f"Pillow's rate, {r['mb_in']:.1f} MB/s in, {r['mb_out']:.1f} MB/s out, "
                  f"wait/batch {r['wait'] * 1e3:.1f} ms; CPU per image: workers "
                  f"{cpu * 1e3:.3f} ms (= {100 * ref_cpu / cpu:.1f}% of Pillow's efficiency), "
                  f"training process {main_cpu * 1e3:.3f} ms")
        if args.cifar:
            try:
                waits, times = cifar_quick_waits(cifar, mean, args.cifar)
            except Exception as e:  # layers/solver not there yet: say so, keep the rest
                print(f"CIFAR-10 quick: not run ({type(e).__name__}: {e})")
            else:
                print(f"CIFAR-10 quick, batch 100, {len(times)} iterations: "
                      f"{times.mean() * 1e3:.1f} ms/iteration; blocked on data: mean "
                      f"{waits.mean() * 1e3:.3f} ms, max {waits.max() * 1e3:.3f} ms per "
                      f"iteration ({100 * waits.sum() / times.sum():.2f}% of the time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
