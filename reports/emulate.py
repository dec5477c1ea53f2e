"""`qoracle emulate`: results files made by numpy models, for demonstrating and testing `verify`.

`esimd` runs oracle.gemm.esimd_gemv (the kernel's arithmetic) on each case's inputs. Two
deliberately wrong kernels show what `verify` reports when a kernel is not the convention:
  swapped-nibbles        reads the high nibble as the even k and the low nibble as the odd k;
  scale-after-sum-fp16   sums x * (q - 8) per 128-group in fp32, then applies the fp16 scale
                         after the sum and accumulates the groups in fp16 arithmetic.
Results are written as a GGUF (one float16 tensor per case, named by the case id) or, with
raw=True, as the little-endian files the manifest names.
"""
from __future__ import annotations

import os

import numpy as np

from oracle.gemm.esimd_gemv import GROUP, esimd_gemv_int4, select_k_split
from reports.gguf_io import read_gguf, write_gguf
from reports.verify import load_manifest, safe_path

__all__ = ["MODELS", "emulate"]


def _swapped_nibbles(x: np.ndarray, w: np.ndarray, s: np.ndarray) -> np.ndarray:
    swapped = ((w & 0x0F) << 4 | (w >> 4)).astype(np.uint8)
    return esimd_gemv_int4(x, swapped, s)


def _scale_after_sum_fp16(x: np.ndarray, w: np.ndarray, s: np.ndarray) -> np.ndarray:
    xf = x[0].astype(np.float32)
    q = np.empty((w.shape[0], 2 * w.shape[1]), dtype=np.float32)
    q[:, 0::2], q[:, 1::2] = (w & 0x0F), (w >> 4)
    q -= np.float32(8)
    acc = np.zeros(w.shape[0], dtype=np.float16)
    for g in range(s.shape[1]):
        part = np.zeros(w.shape[0], dtype=np.float32)
        for k in range(g * GROUP, (g + 1) * GROUP):  # sequential fp32 group sum, unscaled
            part = (part + q[:, k] * xf[k]).astype(np.float32)
        acc = (acc + part.astype(np.float16) * s[:, g]).astype(np.float16)  # fp16 ops: numpy rounds each to fp16
    return acc[None, :]


def _esimd(x, w, s, fused=True):
    return esimd_gemv_int4(x, w, s, k_split=select_k_split(w.shape[0], x.shape[1]), fused=fused)


MODELS = {
    "esimd": _esimd,
    "esimd-unfused": lambda x, w, s: _esimd(x, w, s, fused=False),
    "swapped-nibbles": _swapped_nibbles,
    "scale-after-sum-fp16": _scale_after_sum_fp16,
}


def emulate(vec_dir: str, model: str, out: str, raw: bool = False) -> list[str]:
    """Run `model` on every case of vec_dir; write the results; return the case ids."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    manifest = load_manifest(vec_dir)
    if manifest["convention"] != "esimd.int4_gemv":
        raise ValueError(f"the emulated kernels take esimd.int4_gemv vectors, not {manifest['convention']}")
    ys = {}
    with np.errstate(over="ignore"):
        for c in manifest["cases"]:
            _, t = read_gguf(safe_path(vec_dir, c["file"], c["id"]), c["file"])
            ys[c["id"]] = MODELS[model](t["input.x"], t["weight.weight"], t["weight.scales"])
    if raw:
        os.makedirs(out, exist_ok=True)
        for c in manifest["cases"]:
            with open(safe_path(out, c["result"]["raw_file"], "results"), "wb") as f:
                f.write(ys[c["id"]].astype("<f2").tobytes())
    else:
        write_gguf(out, ys, {"qoracle.results_of": manifest["convention"], "qoracle.model": model})
    return list(ys)
