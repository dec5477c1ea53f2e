"""Which shapes auto-round-lib's `woqgemm_s8` refuses on this host, and which activation rule its
outputs follow: a sweep over (M, K, N), each call in a worker process, each answer judged against
the oracle's model (act.onednn.s8.per_tensor, x * fp32(1/s)) and against the divide rule (x / s).

    python benchmarks/probe_woqgemm_s8.py [--json FILE]

Run it on the host whose behaviour is in question (the AMX hosts are where refusals and FAILs
were reported); it prints one line per shape and a summary of refused K, N and M values. Random
normal activations rarely separate the two rules ("both"); the inputs built to separate them are in
conformance/test_bestla_int8.py::test_woqgemm_s8_reciprocal_not_divide.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kernels.worker import Worker  # noqa: E402
from oracle.conventions import get  # noqa: E402
from oracle.gemm.bestla_woq import S8_ACTIVATIONS, woqgemm_s8_model  # noqa: E402
from oracle.verdict import compare_bounded  # noqa: E402

MOD = "kernels.bestla.ark"


def _divide_rule_prediction(x, w, sb):
    """The model with q = RNE(x / s) instead of x * fp32(1/s)."""
    conv = dataclasses.replace(get(S8_ACTIVATIONS), inverse="divide")
    qa = conv.quantize(np.ascontiguousarray(x, np.float32))
    sa = np.float32(qa.scales[0, 0])
    acc = qa.codes.astype(np.int64) @ w.astype(np.int64).T
    return (acc.astype(np.float32) * np.float32(sa * sb)).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    with Worker({}, timeout=120) as wk:
        print("available:", wk.call(MOD, "available").value, flush=True)
        print("observe:", wk.call(MOD, "observe").value, flush=True)
        rng = np.random.default_rng(0)
        for m, k, n in itertools.product([1, 3, 8, 17], [32, 34, 36, 64, 66, 68, 96, 100, 128, 130, 256, 512],
                                         [1, 8, 16, 32, 33]):
            x = rng.standard_normal((m, k)).astype(np.float32)
            w = rng.integers(-63, 64, (n, k)).astype(np.int8)
            sb = np.full(n, 0.01, np.float32)
            out = wk.call(MOD, "woqgemm_s8", x, w, sb, None)
            if not out.ok:
                rows.append({"m": m, "k": k, "n": n, "status": out.status, "detail": out.detail.splitlines()[0][:160]})
            else:
                pred, exact, bound = woqgemm_s8_model(x, w, sb, None)
                r = compare_bounded(exact, bound, out.value, out_dtype="fp32", convention=S8_ACTIVATIONS,
                                    predicted=pred, what="woqgemm_s8")
                got = out.value.view(np.uint32)
                recip = bool(np.array_equal(got, pred.view(np.uint32)))
                divide = bool(np.array_equal(got, _divide_rule_prediction(x, w, sb).view(np.uint32)))
                rule = {(True, True): "both", (True, False): "reciprocal", (False, True): "divide"}.get((recip, divide),
                                                                                                       "neither")
                rows.append({"m": m, "k": k, "n": n, "status": r.status, "bad": r.mismatch.count if r.mismatch else 0,
                             "rule": rule})
            print(json.dumps(rows[-1]), flush=True)
    refused = [r for r in rows if r["status"] in ("error", "crashed", "timeout")]
    print(f"refused {len(refused)} of {len(rows)}; K refused: {sorted({r['k'] for r in refused})}; "
          f"N refused: {sorted({r['n'] for r in refused})}; M refused: {sorted({r['m'] for r in refused})}")
    statuses = {s: sum(r["status"] == s for r in rows) for s in sorted({r["status"] for r in rows})}
    rules = {k: sum(r.get("rule") == k for r in rows) for k in ("reciprocal", "divide", "both", "neither")}
    print(f"statuses: {statuses}; bytes equal to the rule's prediction (both: the shape does not separate them): {rules}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
