"""Wrong Triton int4 GEMVs (target kernels.triton.w4a16, the project's own kernels): a split-K
reduction that loses a slice, and ESIMD nibbles read in the wrong order."""
from __future__ import annotations

import numpy as np

from kernels.mutants import mutant, real

T = "kernels.triton.w4a16"


def _first_slice(k: int, config: dict | None) -> int:
    """How many leading K elements the first split-K slice covers (0 without a split)."""
    if not config:
        return 0
    block_k = config["BLOCK_K"]
    chunks = -(-k // block_k)
    split = -(-chunks // config["CHUNKS"]) if "CHUNKS" in config else config.get("SPLIT_K", 1)
    return 0 if split <= 1 else min(k, -(-chunks // split) * block_k)


@mutant("triton.w4a16_split_slice_dropped", T, "gemv", ("triton.w4a16.q4_0", "triton.w4a16.esimd"),
        mirrors="a split-K reduction whose ordered sum starts from zero and adds slices 1..S-1, forgetting "
                "slice 0 (an off-by-one in the last program's loop over the workspace)",
        caught_by="conformance/test_triton_w4a16.py::test_w4a16_split_k*")
def split_slice_dropped(x, weight, scales, *, layout, k, out=None, config=None):
    """With a K split, the first slice's partial sum is left out of the output."""
    x = np.array(x, copy=True)
    x[:, : _first_slice(k, config)] = 0
    return real(T, "gemv")(x, weight, scales, layout=layout, k=k, out=out, config=config)


@mutant("triton.w4a16_esimd_nibbles_swapped", T, "gemv", "triton.w4a16.esimd",
        mirrors="the high nibble of each byte taken as the even k (int4_GEMV.h packs the even k low)",
        caught_by="conformance/test_triton_w4a16.py::test_w4a16*")
def esimd_nibbles_swapped(x, weight, scales, *, layout, k, out=None, config=None):
    """ESIMD bytes read with their two nibbles exchanged."""
    w = np.asarray(weight, np.uint8)
    if layout == "esimd":
        w = ((w << 4) | (w >> 4)).astype(np.uint8)
    return real(T, "gemv")(x, w, scales, layout=layout, k=k, out=out, config=config)
