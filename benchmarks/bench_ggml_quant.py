"""Quantize + dequantize speed of a float32 matrix: oracle vs gguf-py vs libggml (one thread).

    python benchmarks/bench_ggml_quant.py [--size 4096] [--repeat 3] [--formats q4_0,q8_0,q4_k]

Each implementation runs on the same matrix in one process; the best of `--repeat` runs is
reported (the least disturbed by other load). libggml's `ggml_quantize_chunk` and `to_float`
are single-threaded; numpy is too for these element-wise kernels. The bytes of every
implementation are compared with the oracle's, so a fast wrong result cannot pass unnoticed.
Targets (docs/benchmarks.md): q4_0 and q8_0 at least 2x faster than gguf-py and within 2x of
libggml; q4_k within 5x of libggml.
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


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--formats", default="q4_0,q8_0,q4_k")
    args = ap.parse_args()
    x = np.random.default_rng(0).standard_normal((args.size, args.size)).astype(np.float32)
    print(f"# {args.size}x{args.size} float32, best of {args.repeat}; python {platform.python_version()}, "
          f"numpy {np.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} at start")
    rows = []
    for name in args.formats.split(","):
        t_oq, ref = best_of(lambda: oracle.quantize(x, name), args.repeat)
        t_odq, _ = best_of(lambda: oracle.dequantize(ref, name), args.repeat)
        rows.append((name, "oracle", t_oq, t_odq, "-"))
        g = gguf_impl(name)
        if g:
            gq, gdq = g
            t_gq, same = None, "n/a (no quantizer)"
            if gq is not None:
                t_gq, gb = best_of(lambda: gq(x), args.repeat)
                same = str(np.array_equal(gb.reshape(ref.shape), ref))
            t_gdq, _ = best_of(lambda: gdq(ref), args.repeat)
            rows.append((name, "gguf-py", t_gq, t_gdq, same))
        lg = libggml_impl(name)
        if lg:
            lq, ldq, lib = lg
            t_lq, lb = best_of(lambda: lq(x), args.repeat)
            t_ldq, _ = best_of(lambda: ldq(ref), args.repeat)
            rows.append((name, f"libggml {lib.version}", t_lq, t_ldq, str(np.array_equal(lb, ref))))
    print(f"\n| format | implementation | quantize s | dequantize s | total s | same bytes as oracle |")
    print("|---|---|---|---|---|---|")
    for name, impl, tq, tdq, same in rows:
        tot = (tq or 0) + tdq
        print(f"| {name} | {impl} | {tq if tq is None else f'{tq:.3f}'} | {tdq:.3f} | "
              f"{'-' if tq is None else f'{tot:.3f}'} | {same} |")
    print("\n| format | oracle vs gguf-py (quant+dequant) | oracle vs libggml (quant+dequant) | target |")
    print("|---|---|---|---|")
    for name in args.formats.split(","):
        mine = {r[1].split()[0]: r for r in rows if r[0] == name}
        o = mine["oracle"][2] + mine["oracle"][3]
        g = mine.get("gguf-py")
        vs_g = f"{(g[2] + g[3]) / o:.2f}x faster" if g and g[2] is not None else \
            (f"dequantize only: {g[3] / mine['oracle'][3]:.2f}x faster" if g else "n/a")
        lg = mine.get("libggml")
        vs_l = f"{o / (lg[2] + lg[3]):.2f}x slower" if lg else "n/a"
        tg, tl = TARGETS.get(name, (None, None))
        target = ", ".join(s for s in (f">= {tg}x faster than gguf-py" if tg else "",
                                        f"<= {tl}x libggml" if tl else "") if s)
        print(f"| {name} | {vs_g} | {vs_l} | {target} |")
    print(f"\n# load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
