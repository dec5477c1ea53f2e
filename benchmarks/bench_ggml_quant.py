"""Quantize + dequantize speed of a float32 matrix: oracle vs gguf-py vs libggml (one thread).

    python benchmarks/bench_ggml_quant.py [--size 4096] [--repeat 7] [--formats q4_0,q8_0,q4_k]

Each implementation runs on the same matrix in one process. The runs are interleaved (two
back-to-back calls of each implementation and direction per round, quantizers first,
`--repeat` rounds), so load from other processes falls on all of them alike, and the best
call of each is reported: wall-clock
seconds, and the process's CPU seconds beside them (what a busy machine distorts least).
libggml's `ggml_quantize_chunk` and `to_float` are single-threaded; numpy is too for these
element-wise kernels. The bytes of every implementation are compared with the oracle's, so a
fast wrong result cannot pass unnoticed. Targets (docs/benchmarks.md): q4_0 and q8_0 at
least 2x faster than gguf-py and within 2x of libggml; q4_k within 5x of libggml.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import oracle  # noqa: E402

TARGETS = {"q4_0": (2.0, 2.0), "q8_0": (2.0, 2.0), "q4_k": (None, 5.0)}  # (x faster than gguf, x of libggml)


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall s, CPU s, result) of one call."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def gguf_impl(name: str):
    """(quantize or None, dequantize) through gguf-py, or None if it is not installed."""
    try:
        from gguf import GGMLQuantizationType, quants
    except ImportError:
        return None
    qt = GGMLQuantizationType[name.upper()]
    try:  # gguf-py only dequantizes the K-quants: its quantizer raises NotImplementedError
        quants.quantize(np.zeros((1, oracle.get_format(name).block_size), np.float32), qt)
        can_quantize = True
    except NotImplementedError:
        can_quantize = False

    def q(x: np.ndarray) -> np.ndarray:
        return quants.quantize(x, qt)

    def dq(b: np.ndarray) -> np.ndarray:
        return quants.dequantize(b, qt)
    return (q if can_quantize else None), dq


def libggml_impl(name: str):
    try:
        from kernels.ggml.libggml import LibGGMLUnavailable, load
        lib = load()
    except (ImportError, LibGGMLUnavailable) as e:
        print(f"# libggml unavailable: {e}")
        return None
    fmt = oracle.get_format(name)

    def dq(b: np.ndarray) -> np.ndarray:
        return lib.dequantize(b, name, b.shape[1] // fmt.block_bytes * fmt.block_size)
    return (lambda x: lib.quantize(x, name)), dq, lib


def measure(x: np.ndarray, name: str, repeat: int) -> list[tuple[str, float | None, float, float | None, float, str]]:
    """Rows (implementation, quantize wall, dequantize wall, quantize CPU, dequantize CPU, same bytes)."""
    ref = oracle.quantize(x, name)
    jobs: dict[tuple[str, str], Callable[[], object]] = {
        ("oracle", "q"): lambda: oracle.quantize(x, name),
        ("oracle", "dq"): lambda: oracle.dequantize(ref, name),
    }
    same = {"oracle": "-"}
    g = gguf_impl(name)
    if g:
        gq, gdq = g
        if gq is not None:
            jobs[("gguf-py", "q")] = lambda: gq(x)
        jobs[("gguf-py", "dq")] = lambda: gdq(ref)
        same["gguf-py"] = "n/a (no quantizer)"
    lg = libggml_impl(name)
    if lg:
        lq, ldq, lib = lg
        jobs[(f"libggml {lib.version}", "q")] = lambda: lq(x)
        jobs[(f"libggml {lib.version}", "dq")] = lambda: ldq(ref)
    best: dict[tuple[str, str], tuple[float, float]] = {}
    order = sorted(jobs, key=lambda k: k[1] == "dq")  # all quantizers, then all dequantizers
    for _ in range(repeat):
        for key in order:
            for _ in range(2):  # back to back: the first call also warms the allocator and caches
                wall, cpu, out = timed(jobs[key])
                w0, c0 = best.get(key, (float("inf"), float("inf")))
                best[key] = (min(w0, wall), min(c0, cpu))
            if key[1] == "q" and key[0] != "oracle":
                same[key[0]] = str(np.array_equal(np.asarray(out).reshape(ref.shape), ref))
    rows = []
    for impl in same:
        q = best.get((impl, "q"))
        dq = best[(impl, "dq")]
        rows.append((impl, q and q[0], dq[0], q and q[1], dq[1], same[impl]))
    return rows


def fmt_s(t: float | None) -> str:
    return "(no quantizer)" if t is None else f"{t:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--formats", default="q4_0,q8_0,q4_k")
    args = ap.parse_args()
    x = np.random.default_rng(0).standard_normal((args.size, args.size)).astype(np.float32)
    print(f"# {args.size}x{args.size} float32, best of {args.repeat} interleaved rounds of 2 calls; python "
          f"{platform.python_version()}, numpy {np.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} at start")
    names = args.formats.split(",")
    results = {name: measure(x, name, args.repeat) for name in names}
    print("\n| format | implementation | quantize s | dequantize s | total s | total CPU s | same bytes as oracle |")
    print("|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        for impl, tq, tdq, cq, cdq, same in rows:
            tot = "-" if tq is None else f"{tq + tdq:.3f}"
            cpu = "-" if cq is None else f"{cq + cdq:.3f}"
            print(f"| {name} | {impl} | {fmt_s(tq)} | {tdq:.3f} | {tot} | {cpu} | {same} |")
    print("\n| format | oracle vs gguf-py (quant+dequant) | oracle vs libggml (quant+dequant) | target | met |")
    print("|---|---|---|---|---|")
    for name, rows in results.items():
        mine = {r[0].split()[0]: r for r in rows}
        o = mine["oracle"][1] + mine["oracle"][2]
        g, lg = mine.get("gguf-py"), mine.get("libggml")
        tg, tl = TARGETS.get(name, (None, None))
        met = []
        if g and g[1] is not None:
            vs_g = f"{(g[1] + g[2]) / o:.2f}x faster"
            met.append(tg is None or (g[1] + g[2]) / o >= tg)
        else:
            vs_g = f"dequantize only: {g[2] / mine['oracle'][2]:.2f}x faster" if g else "n/a"
        if lg:
            vs_l = f"{o / (lg[1] + lg[2]):.2f}x slower"
            met.append(tl is None or o / (lg[1] + lg[2]) <= tl)
        else:
            vs_l = "n/a"
        target = ", ".join(s for s in (f">= {tg}x faster than gguf-py" if tg else "",
                                        f"<= {tl}x libggml" if tl else "") if s)
        print(f"| {name} | {vs_g} | {vs_l} | {target} | {'yes' if met and all(met) else 'no'} |")
    print(f"\n# load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
