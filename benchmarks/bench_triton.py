"""Speed of the project's Triton kernels on an NVIDIA GPU, each verified against the oracle first.

    python benchmarks/bench_triton.py --out DIR [--m 1024,4096] [--quick]

- w8a8 GEMM with its scale epilogue ('(acc*sa)*sb', bf16 out) at M >= 1024 on N x K in
  {4096x4096, 11008x4096, 4096x11008, 14336x4096}, against torch._int_mm (int32 out, no
  epilogue) in the same run: TOPS and the ratio (target >= 1.2x at every shape). Each config
  of kernels.triton.w8a8.HOPPER_CONFIGS is timed and the best one reported.
- int4 GEMV (M = 1) in both layouts (ESIMD, GGML q4_0) on decode shapes, against the
  device-to-device copy bandwidth measured in the same run (2 x bytes / time of
  `dst.copy_(src)`), on a 1 GiB buffer and on a buffer the size of the weight. Cache busting:
  a buffer of at least 2x L2 is read before every timed call (Timer), and calls rotate over
  weight copies totalling > 3x L2 (target >= 75% of copy bandwidth). Each config of w4a16.CANDIDATES[layout]
  is timed and the best one of each kernel variant (V2, V4) reported beside the default
  (`auto`: w4a16.pick_config, what gemv_t runs without a config); every config's median time
  is kept in the JSON (extra_info.all_configs). Every config is checked against the oracle first
  (one failing is left untimed).
- gemlite's A16W4 GEMV (fp32 output, group 128) at the same decode shapes, beside the ESIMD default.
- DA8W4 and torchao's intmm_triton int_matmul at one shape, for the record.
Before timing, every kernel is checked against the oracle on one shape (bit-exact where the
oracle has a model, else within the derived bound); a kernel that fails is not timed.
Without CUDA the script runs only those checks, at tiny shapes, in the Triton interpreter.

Writes DIR/bench_triton.json (pytest-benchmark layout: machine_info, benchmarks[] with stats
in seconds and extra_info) and DIR/bench_triton.md (the table). Needs torch, triton, numpy,
ml_dtypes; imports oracle/ and kernels/ from the repository root.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from kernels.triton import runtime  # noqa: E402  (first: picks CUDA or the interpreter)
from kernels.triton import da8w4, w4a16, w8a8  # noqa: E402
import oracle  # noqa: E402
import oracle.activations  # noqa: E402,F401
from oracle.conventions import get  # noqa: E402
from oracle.gemm.da8w4 import da8w4_linear  # noqa: E402
from oracle.gemm.w8a8 import int8_matmul, w8a8_linear, wrap_int32  # noqa: E402
from oracle.gemm.wxa16 import wxa16_exact  # noqa: E402
from oracle.verdict import compare_bounded, compare_exact  # noqa: E402

GEMM_SHAPES = ((4096, 4096), (11008, 4096), (4096, 11008), (14336, 4096))  # (N, K)
GEMV_SHAPES = ((4096, 4096), (11008, 4096), (4096, 11008), (14336, 4096), (28672, 4096), (4096, 14336))
GEMV_CONFIGS = w4a16.CANDIDATES
AUTO_GBPS: dict = {}  # (layout, N, K) -> GB/s of the default GEMV config, for the gemlite comparison  # per layout: BLOCK_N x BLOCK_K x num_warps, SPLIT_K 1/2, DEQ_FMA on/off
PEAK_INT8_TOPS = 1979.0  # H100 SXM / H200 dense int8


def _check(name: str, res) -> dict:
    print(f"  check {name}: {res.status}" + ("" if res.ok else "\n" + res.message()))
    return {"check": name, "status": res.status, "ok": res.ok}


def check_all(tiny: bool) -> list[dict]:
    """Each kernel against the oracle on one shape; tiny shapes in the interpreter."""
    rng = np.random.default_rng(0)
    out = []
    m, k, n = (17, 64, 33) if tiny else (256, 4096, 512)
    x = rng.standard_normal((m, k)).astype(np.float32)
    conv = "act.sglang.per_token_int8.triton"
    r = w8a8.linear(x, (w := rng.integers(-127, 128, (n, k), dtype=np.int8)), (sb := (rng.random(n) * 0.01).astype(np.float32)),
                    convention=conv, out="bf16")
    qw = get(conv).quantize(x)
    codes, sa = qw.codes.astype(np.int8), qw.scales[:, 0].astype(np.float32)
    out.append(_check("w8a8 codes", compare_exact(codes, r["codes"], convention=conv)))
    out.append(_check("w8a8 output", compare_exact(w8a8_linear(codes, sa, w, sb, out="bf16"), r["y"], convention=conv)))
    a8 = rng.integers(-128, 128, (m, k), dtype=np.int8)
    out.append(_check("w8a8 int32", compare_exact(wrap_int32(int8_matmul(a8, w)), w8a8.int_mm(a8, w), convention="int32")))
    gk, gn = (256, 32) if tiny else (4096, 1024)
    xv = rng.standard_normal((1, gk)).astype(np.float16)
    qb = oracle.quantize(rng.standard_normal((gn, gk)).astype(np.float32), "q4_0")
    e, b = wxa16_exact(xv, oracle.dequantize(qb, "q4_0"), acc="fp32", out="fp16")
    out.append(_check("w4a16 q4_0", compare_bounded(e, b, w4a16.gemv(xv, qb, None, layout="q4_0", k=gk),
                                                    out_dtype="fp16", convention="q4_0")))
    ec = get("esimd.int4_gemv")
    qe = ec.quantize(rng.standard_normal((gn, gk)).astype(np.float32))
    pk = ec.pack(qe)
    e, b = wxa16_exact(xv, ec.dequantize(qe), acc="fp32", out="fp16")
    out.append(_check("w4a16 esimd", compare_bounded(e, b, w4a16.gemv(xv, pk["weight"], pk["scales"], layout="esimd", k=gk),
                                                     out_dtype="fp16", convention="esimd.int4_gemv")))
    out += check_gemv_configs(rng, xv, qb, (pk, qe), tiny)
    aq, za = rng.integers(0, 256, (m, k)).astype(np.uint8), rng.integers(0, 256, m)
    wq, sw, zw = rng.integers(0, 16, (n, k)), (rng.random((n, k // 32)) * 0.05).astype(np.float32), rng.integers(0, 16, (n, k // 32))
    y = da8w4.linear(aq, sa, za, da8w4.pack_weight(wq), sw, zw, group_size=32, out="bf16")
    out.append(_check("da8w4", compare_exact(da8w4_linear(aq, sa, za, wq, sw, zw, group_size=32, out="bf16"), y,
                                             convention="da8w4")))
    try:
        from kernels.triton import torchao_intmm
        if torchao_intmm.available()["ok"]:
            c = torchao_intmm.int_matmul(a8, w)
            out.append(_check("torchao int_matmul", compare_exact(wrap_int32(int8_matmul(a8, w)), c, convention="int32")))
    except Exception as ex:  # torchao absent on the GPU host is fine
        print(f"  torchao intmm_triton not checked: {type(ex).__name__}: {ex}")
    from kernels.triton import gemlite
    av = gemlite.available()
    if av["ok"]:
        codes = rng.integers(0, 16, (gn, gk), dtype=np.uint8)
        sc = (rng.standard_normal((gn, gk // 128)) * 0.05).astype(np.float16)
        wd = (codes.astype(np.float32) - 8) * np.repeat(sc.astype(np.float32), 128, axis=1)
        e, b = wxa16_exact(xv, wd, acc="fp32", out="fp32", stage_dtypes=("fp16",))
        out.append(_check("gemlite a16w4", compare_bounded(e, b, gemlite.a16w4(xv, codes, sc, group_size=128),
                                                           out_dtype="fp32", convention="gemlite.a16w4")))
    else:
        print(f"  gemlite not checked: {av['reason']}")
    return out


def check_gemv_configs(rng, xv, qb, esimd, tiny: bool) -> list[dict]:
    """Every GEMV config of w4a16.CANDIDATES (all on the GPU, one split config per layout in the
    interpreter), each against the oracle, on x with one and with three rows: a config that fails
    is not timed."""
    ec = get("esimd.int4_gemv")
    pk, qe = esimd
    x3 = rng.standard_normal((3, xv.shape[1])).astype(np.float16)
    res = []
    for layout in ("esimd", "q4_0"):
        cfgs = list(GEMV_CONFIGS[layout])
        for cfg in [c for c in cfgs if c.get("V") == 4 and c.get("CHUNKS")][:1] if tiny else cfgs:
            ok = True
            for x in (xv, x3):
                wd = ec.dequantize(qe) if layout == "esimd" else oracle.dequantize(qb, "q4_0")
                e, b = wxa16_exact(x, wd, acc="fp32", out="fp16")
                y = w4a16.gemv(x, pk["weight"] if layout == "esimd" else qb, pk["scales"] if layout == "esimd" else None,
                               layout=layout, k=x.shape[1], config=cfg)
                r = compare_bounded(e, b, y, out_dtype="fp16", convention="esimd.int4_gemv" if layout == "esimd" else "q4_0")
                ok = ok and r.ok
                if not r.ok:
                    print(r.message())
            res.append({"check": f"w4a16 {layout} config V{cfg.get('V', 2)} {_cfg_tag(cfg)}", "status": "PASS" if ok else "FAIL", "ok": ok})
            print(f"  check {res[-1]['check']}: {res[-1]['status']}")
    return res


def _cfg_tag(cfg: dict) -> str:
    return "BN{BLOCK_N} BK{BLOCK_K} w{num_warps} {split}".format(
        split=f"C{cfg['CHUNKS']}" if "CHUNKS" in cfg else f"SK{cfg['SPLIT_K']}", **cfg)


class Timer:
    """GPU time of one call between two CUDA events. Before each call a buffer larger than L2 is read
    (a sum: L2 is left holding clean, unrelated lines, so nothing of the call's inputs is cached and
    no dirty line is written back during the call, as zero-filling would leave), then the GPU is
    held in a short spin (torch.cuda._sleep) so the host has queued the call before the start event
    fires: the time is the kernels' own, not Python's launch overhead."""

    def __init__(self, torch, flush_bytes: int, spin_cycles: int = 100_000):
        self.torch = torch
        self.flush = torch.ones(flush_bytes // 4, dtype=torch.int32, device="cuda")
        self.spin = spin_cycles

    def times(self, fn, reps: int = 50, warmup: int = 5) -> list[float]:
        torch = self.torch
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        sink = torch.zeros((), dtype=torch.int64, device="cuda")
        for i in range(reps):
            torch.sum(self.flush, (0,), out=sink)
            torch.cuda._sleep(self.spin)
            starts[i].record()
            fn()
            ends[i].record()
        torch.cuda.synchronize()
        return [s.elapsed_time(e) / 1e3 for s, e in zip(starts, ends)]  # seconds


def _stats(ts: list[float]) -> dict:
    q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
    return {"min": min(ts), "max": max(ts), "mean": statistics.fmean(ts), "stddev": statistics.pstdev(ts),
            "median": statistics.median(ts), "q1": q[0], "q3": q[2], "iqr": q[2] - q[0], "rounds": len(ts),
            "iterations": 1, "ops": 1.0 / statistics.median(ts), "data": None}


def _entry(group: str, name: str, params: dict, ts: list[float], extra: dict) -> dict:
    return {"group": group, "name": name, "fullname": f"benchmarks/bench_triton.py::{group}::{name}",
            "params": params, "param": json.dumps(params, sort_keys=True), "stats": _stats(ts), "extra_info": extra,
            "options": {"timer": "cuda events", "min_rounds": len(ts)}}


def bench_w8a8(torch, timer, ms: list[int], rows: list, entries: list) -> None:
    for m in ms:
        for n, k in GEMM_SHAPES:
            a = torch.randint(-128, 128, (m, k), dtype=torch.int8, device="cuda")
            w = torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda")
            sa = torch.rand(m, device="cuda") * 0.01
            sb = torch.rand(n, device="cuda") * 0.01
            flops = 2.0 * m * n * k
            t_ref = timer.times(lambda: torch._int_mm(a, w.t()))
            ref_tops = flops / statistics.median(t_ref) / 1e12
            best = None
            for cfg in w8a8.HOPPER_CONFIGS:
                try:
                    ts = timer.times(lambda: w8a8.gemm_t(a, w, sa, sb, out="bf16", config=cfg))
                except Exception as ex:  # a config the GPU cannot hold (shared memory) is skipped
                    print(f"  w8a8 config {cfg} failed: {type(ex).__name__}: {str(ex)[:200]}")
                    continue
                if best is None or statistics.median(ts) < statistics.median(best[1]):
                    best = (cfg, ts)
            if best is None:
                continue
            cfg, ts = best
            tops = flops / statistics.median(ts) / 1e12
            ratio = tops / ref_tops
            rows.append(("w8a8 GEMM (acc*sa)*sb bf16", f"M={m} N={n} K={k}", f"{tops:.0f} TOPS",
                         f"_int_mm {ref_tops:.0f} TOPS", f"{ratio:.2f}x (target 1.2x)",
                         f"{100 * tops / PEAK_INT8_TOPS:.0f}% of {PEAK_INT8_TOPS:.0f}", str(cfg)))
            params = {"M": m, "N": n, "K": k}
            entries.append(_entry("w8a8", f"triton.w8a8[{m}x{n}x{k}]", params, ts,
                                  {"tops": tops, "ratio_vs_int_mm": ratio, "config": cfg,
                                   "peak_fraction": tops / PEAK_INT8_TOPS}))
            entries.append(_entry("w8a8", f"torch._int_mm[{m}x{n}x{k}]", params, t_ref, {"tops": ref_tops}))


def _weight_sizes(layout: str, n: int, k: int, l2: int) -> tuple[int, int, int]:
    """(weight bytes, scale bytes, copies): an int4 [N, K] weight in the layout, and how many copies
    the calls rotate over so that together they exceed 3 x L2 (each call reads its weight from DRAM)."""
    wbytes, sbytes = (n * k // 2, n * (k // 128) * 2) if layout == "esimd" else (n * k // 32 * 18, 0)
    return wbytes, sbytes, max(2, -(-3 * l2 // wbytes))


def bench_gemv(torch, timer, l2: int, rows: list, entries: list, failed_cfgs: set) -> None:
    big = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    big_dst = torch.empty_like(big)
    t_big = timer.times(lambda: big_dst.copy_(big), reps=20)
    copy_bw = 2 * big.numel() / statistics.median(t_big)
    entries.append(_entry("copy", "copy[1GiB]", {"bytes": big.numel()}, t_big, {"GBps": copy_bw / 1e9}))
    del big, big_dst
    rows.append(("device copy", "1 GiB", f"{copy_bw / 1e9:.0f} GB/s", "", "", "", ""))
    for layout in ("esimd", "q4_0"):
        for n, k in GEMV_SHAPES:
            wbytes, sbytes, copies = _weight_sizes(layout, n, k, l2)
            total = wbytes + sbytes + 2 * k + 2 * n
            ws = [torch.randint(0, 256, (n, wbytes // n), dtype=torch.uint8, device="cuda") for _ in range(copies)]
            if layout == "q4_0":  # finite fp16 d in every block
                for wt in ws:
                    wt.view(n, k // 32, 18)[:, :, :2] = (torch.rand(n, k // 32, device="cuda") * 0.01).half().view(
                        torch.uint8).view(n, k // 32, 2)
            ss = [(torch.rand(n, k // 128, device="cuda") * 0.01).half() if layout == "esimd" else None
                  for _ in range(copies)]
            x = torch.randn(1, k, device="cuda", dtype=torch.float16)
            src = torch.empty(wbytes, dtype=torch.uint8, device="cuda")
            dst = torch.empty_like(src)
            t_copy = timer.times(lambda: dst.copy_(src))
            same_bw = 2 * wbytes / statistics.median(t_copy)
            ws_buf = torch.empty(128 * n, dtype=torch.float32, device="cuda")
            best = {}  # "auto" (pick_config, what gemv_t runs by default) and per variant (V2, V4): the best config
            timed = []
            for cfg in [None] + list(GEMV_CONFIGS[layout]):
                if cfg is not None and f"w4a16 {layout} config V{cfg.get('V', 2)} {_cfg_tag(cfg)}" in failed_cfgs:
                    continue
                state = {"i": 0}

                def call(cfg=cfg, state=state):
                    i = state["i"] = (state["i"] + 1) % copies
                    w4a16.gemv_t(x, ws[i], ss[i], layout=layout, k=k, config=cfg, workspace=ws_buf)
                try:
                    ts = timer.times(call)
                except Exception as ex:
                    print(f"  gemv config {cfg} failed: {type(ex).__name__}: {str(ex)[:200]}")
                    continue
                timed.append({"config": cfg or "auto", "median_s": statistics.median(ts)})
                v = "auto" if cfg is None else f"V{cfg.get('V', 2)}"
                if v not in best or statistics.median(ts) < statistics.median(best[v][1]):
                    best[v] = (cfg, ts)
            for t in sorted(timed, key=lambda t: t["median_s"])[:5]:
                print(f"  {layout} {n}x{k}: {total / t['median_s'] / 1e9:.0f} GB/s {t['config']}")
            for v, (cfg, ts) in sorted(best.items()):
                cfg = cfg or w4a16.pick_config(1, n, k, layout)
                bw = total / statistics.median(ts)
                if v == "auto":
                    AUTO_GBPS[(layout, n, k)] = bw / 1e9
                rows.append((f"int4 GEMV {layout} {v}", f"M=1 N={n} K={k} ({copies} weight copies)", f"{bw / 1e9:.0f} GB/s",
                             f"copy {copy_bw / 1e9:.0f} GB/s (same size {same_bw / 1e9:.0f})",
                             f"{100 * bw / copy_bw:.0f}% of copy (target 75%)",
                             f"{100 * bw / same_bw:.0f}% of same-size copy", str(cfg)))
                entries.append(_entry("int4_gemv", f"triton.w4a16.{layout}.{v}[{n}x{k}]",
                                      {"N": n, "K": k, "layout": layout, "variant": v}, ts,
                                      {"GBps": bw / 1e9, "copy_GBps": copy_bw / 1e9, "same_size_copy_GBps": same_bw / 1e9,
                                       "fraction_of_copy": bw / copy_bw, "fraction_of_same_size_copy": bw / same_bw,
                                       "config": cfg, "weight_copies": copies, "bytes": total,
                                       "all_configs": timed if v == "auto" else None}))
            del ws, ss, src, dst


def bench_gemlite(torch, timer, l2: int, rows: list, entries: list) -> None:
    """gemlite's A16W4 GEMV (fp32 output, the configuration the suite certifies) at M = 1 on the GEMV
    shapes, group 128, beside the ESIMD-layout default of this project (same weight bytes + scales)."""
    from gemlite import DType, GemLiteLinearTriton

    for n, k in GEMV_SHAPES:
        wbytes, sbytes, copies = _weight_sizes("esimd", n, k, l2)
        total = wbytes + sbytes + 2 * k + 4 * n  # fp32 output
        lins = []
        for _ in range(copies):
            lin = GemLiteLinearTriton(4, group_size=128, in_features=k, out_features=n, input_dtype=DType.FP16,
                                      output_dtype=DType.FP32)
            lin.pack(torch.randint(0, 16, (n, k), dtype=torch.uint8, device="cuda"),
                     (torch.rand(n, k // 128, device="cuda") * 0.01).half(), 8, bias=None)
            lins.append(lin)
        x = torch.randn(1, k, device="cuda", dtype=torch.float16)
        state = {"i": 0}

        def call(state=state):
            state["i"] = (state["i"] + 1) % copies
            with torch.no_grad():
                lins[state["i"]](x)
        ts = timer.times(call)
        bw = total / statistics.median(ts)
        ours = AUTO_GBPS.get(("esimd", n, k))
        rows.append(("gemlite A16W4 g128 (fp32 out)", f"M=1 N={n} K={k} ({copies} weight copies)", f"{bw / 1e9:.0f} GB/s",
                     f"triton.w4a16.esimd auto {ours:.0f} GB/s" if ours else "", f"{ours * 1e9 / bw:.2f}x ours / gemlite"
                     if ours else "", "", "GEMV_REVSPLITK, gemlite's autotune"))
        entries.append(_entry("gemlite", f"gemlite.a16w4[{n}x{k}]", {"N": n, "K": k}, ts,
                              {"GBps": bw / 1e9, "bytes": total, "esimd_auto_GBps": ours}))
        del lins


def bench_misc(torch, timer, rows: list, entries: list) -> None:
    m, n, k = 1024, 4096, 4096
    a = torch.randint(0, 256, (m, k), dtype=torch.uint8, device="cuda")
    sa = torch.rand(m, device="cuda") * 0.01
    za = torch.randint(0, 256, (m,), dtype=torch.int32, device="cuda")
    w = torch.randint(0, 256, (n, k // 2), dtype=torch.uint8, device="cuda")
    sw = torch.rand(n, k // 128, device="cuda") * 0.01
    zw = torch.randint(0, 16, (n, k // 128), dtype=torch.int32, device="cuda")
    ts = timer.times(lambda: da8w4.linear_t(a, sa, za, w, sw, zw, group_size=128, out="bf16"))
    tops = 2.0 * m * n * k / statistics.median(ts) / 1e12
    rows.append(("DA8W4 group 128 bf16", f"M={m} N={n} K={k}", f"{tops:.0f} TOPS", "", "", "", ""))
    entries.append(_entry("da8w4", f"triton.da8w4[{m}x{n}x{k}]", {"M": m, "N": n, "K": k}, ts, {"tops": tops}))
    try:
        from torchao.kernel import intmm_triton

        from kernels.triton.torchao_intmm import config
        a8 = torch.randint(-128, 128, (m, k), dtype=torch.int8, device="cuda")
        w8 = torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda")
        c = torch.empty((m, n), dtype=torch.int32, device="cuda")
        cfg = config(m, n, k)
        ts = timer.times(lambda: intmm_triton.int_matmul_kernel(a8, w8.t(), c, cfg))
        tops = 2.0 * m * n * k / statistics.median(ts) / 1e12
        rows.append(("torchao int_matmul_kernel", f"M={m} N={n} K={k}", f"{tops:.0f} TOPS", "", "", "", str(cfg)))
        entries.append(_entry("torchao", f"torchao.int_matmul[{m}x{n}x{k}]", {"M": m, "N": n, "K": k}, ts, {"tops": tops}))
    except ImportError as ex:
        print(f"  torchao not timed: {ex}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="directory for bench_triton.json and bench_triton.md")
    p.add_argument("--m", default="1024,4096", help="GEMM M values (comma separated, >= 1024)")
    p.add_argument("--skip", default="", help="comma list of parts to skip: w8a8,gemv,gemlite,misc")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import torch
    import triton

    obs = runtime.observe()
    print(f"device: {obs['device']} ({obs['mode']}), triton {obs['triton']}, torch {obs['torch']}")
    t0 = time.time()
    checks = check_all(tiny=runtime.interpreted())
    rows: list = []
    entries: list = []
    ok = all(c["ok"] for c in checks if " config " not in c["check"])  # a failing config is only left untimed
    failed_cfgs = {c["check"] for c in checks if " config " in c["check"] and not c["ok"]}
    skip = set(filter(None, args.skip.split(",")))
    if runtime.interpreted():
        print("no CUDA: correctness checks only (interpreter)")
    elif not ok:
        print("a kernel failed its oracle check: nothing timed")
    else:
        props = torch.cuda.get_device_properties(0)
        l2 = int(getattr(props, "L2_cache_size", 50 << 20))
        timer = Timer(torch, max(2 * l2, 256 << 20))
        if "w8a8" not in skip:
            bench_w8a8(torch, timer, [int(v) for v in args.m.split(",")], rows, entries)
        if "gemv" not in skip:
            bench_gemv(torch, timer, l2, rows, entries, failed_cfgs)
        if "gemlite" not in skip and any(c["check"] == "gemlite a16w4" and c["ok"] for c in checks):
            bench_gemlite(torch, timer, l2, rows, entries)
        if "misc" not in skip:
            bench_misc(torch, timer, rows, entries)
    header = ("kernel", "shape", "result", "reference", "ratio", "peak / same-size", "config")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    table = "\n".join(lines)
    print(table)
    doc = {"machine_info": {"node": platform.node(), "machine": platform.machine(), "python_version": platform.python_version(),
                            "gpu": obs["device"], "mode": obs["mode"], "triton": triton.__version__, "torch": torch.__version__},
           "commit_info": {}, "datetime": datetime.datetime.now(datetime.timezone.utc).isoformat(), "version": "qoracle-bench-1",
           "checks": checks, "benchmarks": entries, "seconds": time.time() - t0}
    with open(os.path.join(args.out, "bench_triton.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, default=str)
    with open(os.path.join(args.out, "bench_triton.md"), "w", encoding="utf-8") as f:
        f.write(f"# Triton kernels on {obs['device']} (triton {triton.__version__}, torch {torch.__version__})\n\n")
        f.write("Checks: " + ", ".join(f"{c['check']} {c['status']}" for c in checks) + "\n\n" + table + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
