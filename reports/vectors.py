"""Golden vectors: `qoracle export` writes one GGUF file per case and a manifest of SHA-256 sums.

A case is one GEMM shape M x K x N for one weight convention. Its data come from
np.random.default_rng([seed, M, K, N]) (weights standard normal float32, activations standard
normal rounded to fp16), so each case is reproducible on its own and independent of the
others. The file holds:
  input.x               (M, K) fp16 activations
  weight.<key>          the convention's packed arrays as a kernel reads them (weight, scales, zeros...)
  intermediate.codes    (N, K) int32 integer codes before packing
  intermediate.w_dequant (N, K) float32 dequantized weights (the convention's own dequantizer)
  expected.exact        (M, N) float64 exact x @ w_dequant.T (oracle.gemm.wxa16)
  expected.bound        (M, N) float64 per-element rigorous bound for fp32 accumulation in the declared order and fp16 output
  expected.bound_probable (M, N) float64 its probable tier (oracle/bounds.py, docs/bounds.md)
  expected.model        (M, N) fp16 bit-exact model output, where a model of the kernel exists
with the convention, shape, seed, oracle version and declarations as `qoracle.*` metadata.

The manifest (schema qoracle-vectors/1, docs/offline.md) lists the cases, the name, dtype and
shape each result must have, and the SHA-256 of every file. Everything is written in a fixed
order with sorted keys and no timestamps: the same arguments give byte-identical files.
`raw=True` also writes each case's arrays as one little-endian .bin (64-byte aligned
offsets in the manifest) for C harnesses.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import metadata

import numpy as np

from reports.gguf_io import write_gguf

__all__ = ["SCHEMA", "oracle_version", "MAX_CASE_ELEMENTS", "parse_shapes", "make_case", "expectations", "export",
           "sha256_file", "dtype_name"]

SCHEMA = "qoracle-vectors/1"
MAX_CASE_ELEMENTS = 1 << 24  # per operand: keeps a case file small and the export fast
ALIGN = 64
ACC, OUT_DTYPE = "fp32", "fp16"


def declared_order(conv_name: str) -> tuple[str, int]:
    """(summation order, lanes) the vectors declare for the bound: the kernel's own where its source fixes it.

    ESIMD INT4 GEMV (oracle/gemm/esimd_gemv.py, from int4_GEMV.h): 128 fp32 lanes (64 even + 64 odd
    accumulators), each a sequential chain over its K/128 (or K/(128 K_SPLIT)) terms, then halving
    trees and the K_SPLIT tree; every term passes through at most K/128 - 1 + 7 additions whatever
    K_SPLIT is, which is bounds.height(K, 'lanes', lanes=128). Elsewhere no order is declared: 'any'.
    """
    if conv_name == "esimd.int4_gemv":
        return "lanes", 128
    return "any", 8


def oracle_version() -> str:
    """The installed qoracle version, else the checkout's pyproject.toml version."""
    try:
        return metadata.version("qoracle")
    except metadata.PackageNotFoundError:
        pass
    import tomllib

    try:
        with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyproject.toml"), "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, ValueError):
        return "unknown"


def parse_shapes(spec: str) -> list[tuple[int, int, int]]:
    """'1x1024x64,1x4096x256' -> [(M, K, N), ...]; a one-line ValueError for anything else."""
    shapes = []
    for part in spec.split(","):
        dims = part.strip().lower().split("x")
        if len(dims) != 3 or not all(d.isdigit() for d in dims):
            raise ValueError(f"shape {part.strip()!r} is not MxKxN with positive integers")
        m, k, n = (int(d) for d in dims)
        if min(m, k, n) < 1 or max(m * k, k * n, m * n) > MAX_CASE_ELEMENTS:
            raise ValueError(f"shape {part.strip()!r}: dimensions must be >= 1 and each operand <= {MAX_CASE_ELEMENTS} elements")
        shapes.append((m, k, n))
    if len(set(shapes)) != len(shapes):
        raise ValueError(f"shapes {spec!r} repeat a shape")
    return shapes


def dtype_name(a: np.ndarray) -> str:
    return np.asarray(a).dtype.name


@dataclass
class Case:
    id: str
    shape: tuple[int, int, int]
    arrays: dict[str, np.ndarray]
    meta: dict[str, object]
    model: str | None


def _model(conv_name: str, x: np.ndarray, packed: dict[str, np.ndarray]) -> tuple[np.ndarray, str] | None:
    """The bit-exact model output of the kernel a convention belongs to, where one exists."""
    if conv_name != "esimd.int4_gemv":
        return None
    from oracle.gemm.esimd_gemv import esimd_gemv_int4, select_k_split

    n, k = packed["weight"].shape[0], x.shape[1]
    ks = select_k_split(n, k)
    y = esimd_gemv_int4(x, packed["weight"], packed["scales"], k_split=ks, fused=True)
    return y, f"oracle.gemm.esimd_gemv.esimd_gemv_int4(k_split={ks}, fused=True)"


def expectations(conv_name: str, x: np.ndarray, packed: dict[str, np.ndarray], codes: np.ndarray,
                 zeros: np.ndarray | None) -> tuple[dict[str, np.ndarray], str | None]:
    """({intermediate.* and expected.* arrays}, model description) of one case, from its inputs alone.

    The weight is what a kernel reads: the packed arrays' scales with the stated integer codes
    (and float zero points, which the packed bytes cannot hold), and it must pack back to the
    packed arrays byte for byte. `make_case` writes these arrays and `qoracle verify` recomputes
    them from a case file: one code path, so a stored expectation can be checked, not trusted.
    """
    import oracle.conventions as conventions
    from oracle.bounds import probable_of
    from oracle.conventions import QuantizedWeight
    from oracle.gemm.wxa16 import wxa16_exact

    conv = conventions.get(conv_name)
    k = x.shape[1]
    held = conv.unpack(packed, k)
    qw = QuantizedWeight(np.asarray(codes, dtype=np.int32), held.scales, held.zeros if zeros is None else zeros,
                         conv.name, held.tensor_scale)
    repacked = {key: v for key, v in conv.pack(qw).items() if isinstance(v, np.ndarray)}
    if set(repacked) != set(packed) or any(repacked[key].dtype != packed[key].dtype or repacked[key].shape != packed[key].shape
                                           or repacked[key].tobytes() != packed[key].tobytes() for key in packed):
        raise ValueError(f"the packed weight arrays are not the {conv_name} packing of intermediate.codes")
    w_deq = conv.dequantize(qw)
    order, lanes = declared_order(conv_name)
    exact, bound = wxa16_exact(x, w_deq, acc=ACC, out=OUT_DTYPE, order=order, lanes=lanes)
    arrays = {"intermediate.w_dequant": w_deq.astype(np.float32), "expected.exact": exact.astype(np.float64),
              "expected.bound": np.asarray(bound, dtype=np.float64),
              "expected.bound_probable": probable_of(bound).astype(np.float64)}
    model = _model(conv_name, x, packed)
    if model is None:
        return arrays, None
    arrays["expected.model"] = model[0]
    return arrays, model[1]


def make_case(conv_name: str, shape: tuple[int, int, int], seed: int, index: int) -> Case:
    """Inputs, packed weights, intermediates and expectations of one case."""
    import oracle.conventions as conventions

    conv = conventions.get(conv_name)
    if conv.kind != "weight":
        raise ValueError(f"{conv_name} is an activation convention; export takes weight conventions")
    m, k, n = shape
    if conv_name == "esimd.int4_gemv" and (m != 1 or k % 128):
        raise ValueError(f"esimd.int4_gemv vectors target the ESIMD GEMV: M must be 1 and K a multiple of 128, got {m}x{k}x{n}")
    rng = np.random.default_rng([seed, m, k, n])
    w = rng.standard_normal((n, k)).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float16)
    try:
        qw = conv.quantize(w)
        packed = {key: v for key, v in conv.pack(qw).items() if isinstance(v, np.ndarray)}
    except ValueError as e:
        raise ValueError(f"{conv_name} cannot quantize a {n}x{k} weight: {e}") from None
    order, lanes = declared_order(conv_name)
    arrays = {"input.x": x, "intermediate.codes": qw.codes.astype(np.int32)}
    arrays.update({f"weight.{key}": v for key, v in packed.items()})
    if qw.zeros is not None:
        arrays["intermediate.zeros"] = np.asarray(qw.zeros).astype(np.float32 if conv.zero_domain.startswith("float") else np.int32)
    expected, desc = expectations(conv_name, x, packed, arrays["intermediate.codes"], arrays.get("intermediate.zeros"))
    arrays.update(expected)
    cid = f"{index:03d}_{m}x{k}x{n}"
    meta: dict[str, object] = {
        "qoracle.schema": SCHEMA, "qoracle.case": cid, "qoracle.convention": conv_name,
        "qoracle.shape": [m, k, n], "qoracle.seed": int(seed), "qoracle.oracle_version": oracle_version(),
        "qoracle.accumulation": f"{ACC} accumulation, order {order}" + (f" over {lanes} lanes" if order == "lanes" else "")
                                + "; products rounded or fused",
        "qoracle.out_dtype": OUT_DTYPE, "qoracle.model": desc or "",
        "qoracle.source": conv.source,
    }
    return Case(cid, shape, arrays, meta, desc)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_raw(path: str, arrays: dict[str, np.ndarray]) -> dict[str, dict]:
    """All arrays of a case in one little-endian file, sorted by name, at 64-byte aligned offsets."""
    layout, off = {}, 0
    with open(path, "wb") as f:
        for name in sorted(arrays):
            a = np.ascontiguousarray(arrays[name])
            if a.dtype.byteorder == ">":
                a = a.astype(a.dtype.newbyteorder("<"))
            pad = -off % ALIGN
            f.write(b"\0" * pad)
            off += pad
            f.write(a.tobytes())
            layout[name] = {"dtype": dtype_name(a), "shape": list(a.shape), "offset": off, "nbytes": a.nbytes}
            off += a.nbytes
    return layout


def export(conv_name: str, shapes: list[tuple[int, int, int]], seed: int, out_dir: str, raw: bool = False) -> dict:
    """Write the cases and manifest.json into out_dir; return the manifest."""
    if not 0 <= seed < 2 ** 63:
        raise ValueError(f"seed {seed} must be in [0, 2^63)")
    cases = [make_case(conv_name, s, seed, i) for i, s in enumerate(shapes)]  # all validated before writing
    os.makedirs(out_dir, exist_ok=True)
    files: dict[str, str] = {}
    entries = []
    for c in cases:
        fname = f"case_{c.id}.gguf"
        write_gguf(os.path.join(out_dir, fname), c.arrays, c.meta)
        files[fname] = sha256_file(os.path.join(out_dir, fname))
        m, _, n = c.shape
        entry = {"id": c.id, "shape": list(c.shape), "file": fname, "model": c.model,
                 "tensors": {k: {"dtype": dtype_name(v), "shape": list(v.shape)} for k, v in sorted(c.arrays.items())},
                 "result": {"tensor": c.id, "dtype": "float16", "shape": [m, n], "raw_file": f"{c.id}.out.bin"}}
        if raw:
            rname = f"case_{c.id}.bin"
            entry["raw"] = {"file": rname, "tensors": _write_raw(os.path.join(out_dir, rname), c.arrays)}
            files[rname] = sha256_file(os.path.join(out_dir, rname))
        entries.append(entry)
    shapes_arg = ",".join(f"{m}x{k}x{n}" for m, k, n in shapes)
    manifest = {
        "schema": SCHEMA, "oracle_version": oracle_version(), "convention": conv_name, "seed": int(seed),
        "declared": {"accumulation": ACC, "order": declared_order(conv_name)[0], "lanes": declared_order(conv_name)[1],
                     "out_dtype": OUT_DTYPE, "input_dtype": "fp16"},
        "generator": "np.random.default_rng([seed, M, K, N]): weight standard normal float32 (N, K), "
                     "then x standard normal (M, K) rounded to fp16",
        "reproduce": f"qoracle export --convention {conv_name} --shapes {shapes_arg} --seed {seed} --out DIR"
                     + (" --raw" if raw else ""),
        "cases": entries, "files": dict(sorted(files.items())),
    }
    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest
