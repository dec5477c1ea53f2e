"""The Triton interpreter shims of kernels/triton/runtime.py change speed, not values.

`_patch_once_shim` stops a kernel's @triton.jit helpers from re-patching triton.language on every
call; the kernels whose helpers are called most (w4a16's V4 and V2 paths, DA8W4, W8A8) must give
the same bytes with the shim as with triton's own patching, and the shim must really skip.
Run in a subprocess: the interpreter mode is fixed when triton is first imported.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None or importlib.util.find_spec("torch") is None,
                                reason="triton or torch not installed")

_SCRIPT = r"""
import json, os
os.environ["TRITON_INTERPRET"] = "1"
import numpy as np
from kernels.triton import runtime, w4a16, w8a8, da8w4
from triton.runtime import interpreter
import oracle

rng = np.random.default_rng(4)
x = rng.standard_normal((3, 256)).astype(np.float16)
q = oracle.quantize(rng.standard_normal((6, 256)).astype(np.float32), "q4_0")
xa = rng.standard_normal((5, 300)).astype(np.float32)
codes = rng.integers(0, 16, (7, 256)).astype(np.uint8)
w8 = rng.integers(-127, 128, (7, 300)).astype(np.int8)
sw = rng.random((7, 2)).astype(np.float32)
zw = rng.integers(0, 16, (7, 2)).astype(np.int32)


def outputs():
    ys = [w4a16.gemv(x, q, None, layout="q4_0", k=256, out="fp16",
                     config=dict(V=4, BLOCK_M=1, BLOCK_N=4, BLOCK_K=64, SPLIT_K=3, num_warps=1)),
          w4a16.gemv(x, q, None, layout="q4_0", k=256, out="fp16")]
    a, s = w8a8.quantize_act(xa, "act.vllm.per_token_int8.cuda")
    ys += [a, s, w8a8.gemm(a, s, w8, sw[:, 0])]
    act = da8w4.quantize_act(xa[:, :256], da8w4.DEFAULT_CONVENTION)
    ys += [act["codes"], da8w4.linear(act["codes"], act["scales"], act["zeros"], da8w4.pack_weight(codes), sw, zw,
                                      group_size=128)]
    return [np.ascontiguousarray(y).tobytes().hex() for y in ys]


builtin = interpreter._patch_builtin
count = [0]
def counting(*args, **kwargs):
    count[0] += 1
    return builtin(*args, **kwargs)
interpreter._patch_builtin = counting

shimmed = outputs()
shimmed_patches = count[0]
count[0] = 0
interpreter._patch_lang = interpreter._patch_lang._qoracle_original
interpreter.GridExecutor.__call__ = interpreter.GridExecutor.__call__._qoracle_original
plain = outputs()
print(json.dumps({"same": shimmed == plain, "n": len(plain), "shimmed": shimmed_patches, "plain": count[0]}))
"""


def test_patch_once_shim_keeps_bytes():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["n"] == 7 and got["same"], got
    assert got["shimmed"] * 3 < got["plain"], f"the shim did not skip the helpers' re-patching: {got}"
