"""GPU benchmarks of c2ops-cuda against PyTorch CUDA, in the same process on the same GPU.

Rows: FC and FC + FCGradient (the CPU benchmarks' shape and a large one), Conv
(the CPU conv benchmarks' cases, forward and training step), Relu and Add on
256M float32 elements against the measured device-to-device copy bandwidth,
and SparseLengthsSum against ``torch.nn.functional.embedding_bag``. Both sides
run float32 without TF32 (PyTorch's cuDNN would otherwise use TF32 for conv).
Each time is the best of several repeats of a calibrated loop, synchronized.
Writes bench.md and bench.json to --out. Run by benchmarks/gpu/run.sh.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from c2core import core, workspace  # noqa: E402
from c2core.proto import caffe2_pb2  # noqa: E402

GPU = core.DeviceOption(caffe2_pb2.CUDA, 0)
TARGETS = {"fc": 0.7, "conv": 0.7, "bandwidth": 0.8, "sls": 0.8}


TIMING = {"min_time": 0.2, "repeat": 5}


def best_time(run, sync):
    """Seconds per call of run(): warm up, calibrate the loop length, best of `repeat` synchronized loops."""
    min_time, repeat = TIMING["min_time"], TIMING["repeat"]
    for _ in range(3):
        run()
    sync()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            run()
        sync()
        dt = time.perf_counter() - t0
        if dt >= min_time or n >= 1 << 16:
            break
        n *= 2
    best = dt / n
    for _ in range(repeat - 1):
        t0 = time.perf_counter()
        for _ in range(n):
            run()
        sync()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


class C2:
    """A c2 net on the GPU: feeds go to the GPU, run() is one RunNet."""

    def __init__(self, name, feeds, build):
        from c2ops_cuda import runtime
        self.sync = runtime.synchronize
        workspace.ResetWorkspace()
        for k, v in feeds.items():
            workspace.FeedBlob(k, v, GPU)
        net = core.Net(name)
        with core.DeviceScope(GPU):
            build(net)
        workspace.CreateNet(net)
        self.name = net.Name()

    def run(self):
        workspace.RunNet(self.name)

    def fetch(self, blob):
        return workspace.FetchBlob(blob)


def torch_env():
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return torch


ROWS = []


def row(group, what, c2_s, peer, peer_s, unit_work=None, unit=""):
    r = {"group": group, "what": what, "c2_ms": c2_s * 1e3, "peer": peer,
         "peer_ms": None if peer_s is None else peer_s * 1e3}
    r["speed_vs_peer"] = None if peer_s is None else peer_s / c2_s     # > 1: c2 faster
    if unit_work:
        r["c2_rate"] = f"{unit_work / c2_s / 1e9:.1f} G{unit}/s"
        if peer_s:
            r["peer_rate"] = f"{unit_work / peer_s / 1e9:.1f} G{unit}/s"
    ROWS.append(r)
    print(json.dumps(r), flush=True)
    return r


def close(a, b, what, rtol=1e-3, atol=1e-3):
    if not np.allclose(a, b, rtol=rtol, atol=atol):
        raise AssertionError(f"{what}: c2 and PyTorch disagree (max diff {np.abs(a - b).max():.3g})")


# -- FC ------------------------------------------------------------------------------------------

def bench_fc(torch, size):
    cases = {"smoke": [(16, 48, 24)], "quick": [(256, 1024, 1024)]}.get(size, [(256, 1024, 1024), (4096, 4096, 4096)])
    for m, k, n in cases:
        _fc_case(torch, m, k, n)


def _fc_case(torch, m, k, n):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, k), dtype=np.float32)
    w = rng.standard_normal((n, k), dtype=np.float32) * 0.05
    b = rng.standard_normal(n, dtype=np.float32)
    dy = rng.standard_normal((m, n), dtype=np.float32)
    flops = 2 * m * n * k
    c2 = C2("fc", {"X": x, "W": w, "b": b}, lambda net: net.FC(["X", "W", "b"], "Y"))
    t_c2 = best_time(c2.run, c2.sync)
    tx, tw, tb = (torch.from_numpy(a).cuda() for a in (x, w, b))
    t_pt = best_time(lambda: torch.nn.functional.linear(tx, tw, tb), torch.cuda.synchronize)
    close(c2.fetch("Y"), torch.nn.functional.linear(tx, tw, tb).cpu().numpy(), "FC")
    row("fc", f"FC {m}x{k} -> {n}", t_c2, "torch linear", t_pt, flops, "FLOP")

    def build(net):
        net.FC(["X", "W", "b"], "Y")
        net.FCGradient(["X", "W", "dY"], ["dW", "db", "dX"])
    c2 = C2("fc_train", {"X": x, "W": w, "b": b, "dY": dy}, build)
    t_c2 = best_time(c2.run, c2.sync)
    tdy = torch.from_numpy(dy).cuda()

    def pt_train():
        y = torch.nn.functional.linear(tx, tw, tb)
        return y, tdy.t().mm(tx), tdy.sum(0), tdy.mm(tw)
    t_pt = best_time(pt_train, torch.cuda.synchronize)
    row("fc", f"FC + FCGradient {m}x{k} -> {n}", t_c2, "torch linear + grads (mm)", t_pt, 3 * flops, "FLOP")


# -- Conv ----------------------------------------------------------------------------------------

CONV_CASES = [  # (name, n, c, m, hw, k, pad, group, train) as in benchmarks/bench_conv.py
    ("ResNet 3x3", 32, 64, 64, 56, 3, 1, 1, False),
    ("ResNet 1x1 down", 8, 256, 64, 56, 1, 0, 1, False),
    ("ResNet 1x1 up", 8, 64, 256, 56, 1, 0, 1, False),
    ("MobileNet depthwise 112", 8, 32, 32, 112, 3, 1, 32, False),
    ("MobileNet depthwise 56", 8, 128, 128, 56, 3, 1, 128, False),
    ("ResNet 3x3 train", 32, 64, 64, 56, 3, 1, 1, True),
    ("LeNet conv1 train", 64, 1, 20, 28, 5, 0, 1, True),
    ("LeNet conv2 train", 64, 20, 50, 12, 5, 0, 1, True),
    ("AlexNet conv4 (2 groups)", 8, 384, 384, 13, 3, 1, 2, False),
]


def _smoke_case(name, n, c, m, hw, k, pad, group, train):
    """The same geometry with a batch of 2, at most 8 channels per group and 10 x 10 images."""
    c, m = min(c // group, 8) * group, min(m // group, 8) * group
    return name, 2, c, m, min(hw, 10), k, pad, group, train


def bench_conv(torch, size):
    cases = {"smoke": [_smoke_case(*c) for c in CONV_CASES], "quick": CONV_CASES[:3]}.get(size, CONV_CASES)
    for case in cases:
        _conv_case(torch, *case)


def _conv_case(torch, name, n, c, m, hw, k, pad, group, train):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, hw, hw), dtype=np.float32)
    w = rng.standard_normal((m, c // group, k, k), dtype=np.float32) * 0.1
    b = rng.standard_normal(m, dtype=np.float32)
    out = hw + 2 * pad - k + 1
    dy = rng.standard_normal((n, m, out, out), dtype=np.float32)
    flops = 2 * n * m * out * out * (c // group) * k * k * (3 if train else 1)

    def build(net):
        net.Conv(["X", "W", "b"], "Y", kernel=k, pad=pad, group=group)
        if train:
            net.ConvGradient(["X", "W", "dY"], ["dW", "db", "dX"], kernel=k, pad=pad, group=group)
    feeds = {"X": x, "W": w, "b": b}
    if train:
        feeds["dY"] = dy
    c2 = C2("conv", feeds, build)
    t_c2 = best_time(c2.run, c2.sync)
    tx, tw, tb, tdy = (torch.from_numpy(a).cuda() for a in (x, w, b, dy))
    if train:
        tx.requires_grad_(True)
        tw.requires_grad_(True)
        tb.requires_grad_(True)

    def pt():
        y = torch.nn.functional.conv2d(tx, tw, tb, padding=pad, groups=group)
        if train:
            return torch.autograd.grad(y, (tx, tw, tb), tdy)
        return y
    t_pt = best_time(pt, torch.cuda.synchronize)
    with torch.no_grad():
        close(c2.fetch("Y"), torch.nn.functional.conv2d(tx, tw, tb, padding=pad, groups=group).cpu().numpy(),
              f"Conv {name}", rtol=1e-3, atol=1e-2)
    row("conv", f"{'Conv + ConvGradient' if train else 'Conv'} {name}: {c}->{m} {k}x{k}, {hw}x{hw}, batch {n}",
        t_c2, "torch conv2d (cuDNN, no TF32)", t_pt, flops, "FLOP")


# -- bandwidth ------------------------------------------------------------------------------------

def bench_bandwidth(torch, size):
    from c2ops_cuda import runtime
    n = {"smoke": 1 << 20, "quick": 16 << 20}.get(size, 256 << 20)
    x = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    c2 = C2("copy", {"X": x}, lambda net: net.Copy("X", "Y"))
    src = workspace.current().get_blob("X").value
    dst = runtime.empty(src.shape, src.dtype)
    t_copy = best_time(lambda: runtime.copy_into(dst, src), runtime.synchronize)
    copy_bw = 2 * src.nbytes / t_copy
    ROWS.append({"group": "bandwidth", "what": f"device-to-device copy of {n >> 20}M float32 (cuMemcpyDtoD)",
                 "c2_ms": t_copy * 1e3, "c2_rate": f"{copy_bw / 1e9:.0f} GB/s", "peer": "", "peer_ms": None,
                 "speed_vs_peer": None})
    print(json.dumps(ROWS[-1]), flush=True)
    del c2
    for op, reads in (("Relu", 1), ("Add", 2)):
        _elementwise_case(torch, op, reads, x, n, copy_bw)


def _elementwise_case(torch, op, reads, x, n, copy_bw):
    feeds = {"X": x} if op == "Relu" else {"X": x, "Z": x[::-1].copy()}
    c2 = C2(op.lower(), feeds, (lambda net: net.Relu("X", "Y")) if op == "Relu" else
            (lambda net: net.Add(["X", "Z"], "Y")))
    t_c2 = best_time(c2.run, c2.sync)
    moved = (reads + 1) * x.nbytes
    tx = torch.from_numpy(x).cuda()
    if op == "Relu":
        t_pt = best_time(lambda: torch.relu(tx), torch.cuda.synchronize)
    else:
        tz = torch.from_numpy(feeds["Z"]).cuda()
        t_pt = best_time(lambda: tx + tz, torch.cuda.synchronize)
    r = row("bandwidth", f"{op} on {n >> 20}M float32", t_c2, f"torch {op.lower()}", t_pt, moved, "B")
    r["fraction_of_copy_bandwidth"] = moved / t_c2 / copy_bw
    print(json.dumps({"what": r["what"], "fraction_of_copy_bandwidth": r["fraction_of_copy_bandwidth"]}),
          flush=True)
    workspace.ResetWorkspace()


# -- SparseLengthsSum ------------------------------------------------------------------------------

def bench_sls(torch, size):
    rows_, dim = (20_000, 64) if size != "full" else (1_000_000, 64)
    rng = np.random.default_rng(0)
    data = rng.standard_normal((rows_, dim), dtype=np.float32)
    for batch, pool in ((512, 50), (4096, 50)) if size == "full" else ((64, 50),):
        _sls_case(torch, data, rows_, dim, batch, pool, rng)


def _sls_case(torch, data, rows_, dim, batch, pool, rng):
    lengths = np.full(batch, pool, np.int32)
    idx = rng.integers(0, rows_, size=batch * pool).astype(np.int64)
    c2 = C2("sls", {"DATA": data, "INDICES": idx, "LENGTHS": lengths},
            lambda net: net.SparseLengthsSum(["DATA", "INDICES", "LENGTHS"], "OUT"))
    t_c2 = best_time(c2.run, c2.sync)
    tdata = torch.from_numpy(data).cuda()
    tidx = torch.from_numpy(idx).cuda()
    offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)).cuda()
    t_pt = best_time(lambda: torch.nn.functional.embedding_bag(tidx, tdata, offsets, mode="sum"),
                     torch.cuda.synchronize)
    close(c2.fetch("OUT"), torch.nn.functional.embedding_bag(tidx, tdata, offsets, mode="sum").cpu().numpy(),
          "SparseLengthsSum")
    row("sls", f"SparseLengthsSum {rows_}x{dim} table, batch {batch}, {pool} per bag", t_c2,
        "torch embedding_bag(sum)", t_pt, batch * pool * dim * 4, "B")
    workspace.ResetWorkspace()


def report(out_dir):
    lines = ["| group | benchmark | c2 ms | c2 rate | peer | peer ms | peer rate | c2 speed / peer | target |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in ROWS:
        target = TARGETS.get(r["group"])
        if r["group"] == "bandwidth" and "fraction_of_copy_bandwidth" in r:
            got = r["fraction_of_copy_bandwidth"]
            verdict = f"{got:.0%} of copy BW (>= {target:.0%}: {'met' if got >= target else 'NOT met'})"
        elif r.get("speed_vs_peer") is not None and target is not None and r["group"] != "bandwidth":
            got = r["speed_vs_peer"]
            verdict = f">= {target}x: {'met' if got >= target else 'NOT met'}"
        else:
            verdict = ""
        peer_ms = "" if r.get("peer_ms") is None else f"{r['peer_ms']:.3f}"
        speed = "" if r.get("speed_vs_peer") is None else f"{r['speed_vs_peer']:.2f}x"
        lines.append(f"| {r['group']} | {r['what']} | {r['c2_ms']:.3f} | {r.get('c2_rate', '')} | {r['peer']} | "
                     f"{peer_ms} | {r.get('peer_rate', '')} | {speed} | {verdict} |")
    text = "\n".join(lines)
    print(text)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "bench.md"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(out_dir, "bench.json"), "w") as f:
            json.dump(ROWS, f, indent=1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT", ""))
    p.add_argument("--quick", action="store_true", help="the first shapes of each group only")
    p.add_argument("--smoke", action="store_true",
                   help="tiny shapes and short loops: checks the script and c2 against PyTorch, times nothing useful")
    p.add_argument("--only", default="fc,conv,bandwidth,sls")
    args = p.parse_args(argv)
    import c2ops_cuda
    if not c2ops_cuda.AVAILABLE:
        raise SystemExit(f"c2ops-cuda is not usable here: {c2ops_cuda.REASON}")
    size = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.smoke:
        TIMING.update(min_time=0.005, repeat=2)
    torch = torch_env()
    name = torch.cuda.get_device_name(0)
    print(f"GPU: {name}; torch {torch.__version__}", flush=True)
    for group in args.only.split(","):
        try:
            {"fc": bench_fc, "conv": bench_conv, "bandwidth": bench_bandwidth, "sls": bench_sls}[group](
                torch, size)
        except Exception as e:   # one failing group must not hide the others
            ROWS.append({"group": group, "what": f"FAILED: {type(e).__name__}: {e}", "c2_ms": float("nan"),
                         "peer": "", "peer_ms": None, "speed_vs_peer": None})
            print(f"{group} failed: {type(e).__name__}: {e}", flush=True)
        workspace.ResetWorkspace()
    report(args.out)


if __name__ == "__main__":
    main()
