"""The one comparison API: a kernel's output against the oracle, as BIT_EXACT, BOUNDED, SUSPECT or FAIL.

Bytes (packed weights, codes, integer accumulators, a float output whose arithmetic order is
modelled) are compared with `compare_exact`: equal bytes or FAIL. A float output whose order is
not fixed is held to a derived bound (oracle/bounds.py) with `compare_bounded`: BIT_EXACT when
it equals the modelled prediction, BOUNDED when every element is within its probable bound,
SUSPECT when every element is within its rigorous bound but some exceed the probable one
(independent mean-zero roundings would do that with probability below
oracle.bounds.FAILURE_PROBABILITY per element: the kernel most likely rounds more, or more
coherently, than declared), FAIL naming the first element outside the rigorous bound. SUSPECT
is not a clean pass, but it is a warning, not a failure (oracle/status.py says why): the
conformance judge records it and lets the case pass. Metrics (max abs error, max ULP distance in
the output dtype, NMSE, SQNR) are informational only: they never decide a verdict.

`Result.status` is a plain string so that layers above can add their own outcomes
("CRASHED", "UNAVAILABLE") without changing this module.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum

import numpy as np

from oracle.bounds import FAILURE_PROBABILITY, float_spec, probable_of

__all__ = ["Verdict", "Mismatch", "Metrics", "Result", "compare_exact", "compare_bounded", "ulp_distance"]


class Verdict(str, Enum):
    BIT_EXACT = "BIT_EXACT"
    BOUNDED = "BOUNDED"
    SUSPECT = "SUSPECT"
    FAIL = "FAIL"


@dataclass
class Mismatch:
    """The first element that differs (exact) or exceeds its bound (bounded)."""

    index: tuple[int, ...]
    block: tuple[int, ...] | None
    expected_hex: str
    actual_hex: str
    xor_hex: str
    differing_bits: list[int]
    expected: float | int | None
    actual: float | int | None
    bound: float | None = None  # the rigorous bound of that element
    error: float | None = None
    count: int = 1  # how many elements differ / exceed in total
    bound_probable: float | None = None  # the probable tier of that element (bounded comparisons)


@dataclass
class Metrics:
    max_abs: float | None = None
    max_ulp: int | None = None
    nmse: float | None = None
    sqnr_db: float | None = None


@dataclass
class Result:
    status: str
    convention: str
    what: str
    detail: str = ""
    mismatch: Mismatch | None = None
    metrics: Metrics = field(default_factory=Metrics)
    worst_ratio: float | None = None  # max error / rigorous bound over every element (bounded comparisons)
    worst_ratio_probable: float | None = None  # max error / probable bound over every element
    worst_index: tuple[int, ...] | None = None  # the element of worst_ratio
    failure_probability: float | None = None  # the probable tier's stated per-element failure probability
    reproduce: str = ""  # filled in by the caller: a command or snippet that reruns the case

    @property
    def ok(self) -> bool:
        return self.status in (Verdict.BIT_EXACT.value, Verdict.BOUNDED.value)

    def message(self) -> str:
        """Human-readable verdict; for a FAIL, everything needed to see what went wrong."""
        lines = [f"{self.status}: {self.what} [{self.convention}]"]
        if self.detail:
            lines.append(f"  {self.detail}")
        m = self.mismatch
        if m is not None:
            blk = f" in block {m.block}" if m.block is not None else ""
            lines.append(f"  first bad element {m.index}{blk} ({m.count} bad in total)")
            lines.append(f"  expected {m.expected!r}  bytes {m.expected_hex}")
            lines.append(f"  actual   {m.actual!r}  bytes {m.actual_hex}")
            lines.append(f"  xor      {m.xor_hex}  differing bits {m.differing_bits}")
            lines += self._bound_lines(m)
        if self.worst_ratio is not None:
            at = f" at {self.worst_index}" if self.worst_index is not None else ""
            lines.append(f"  worst error/bound {self.worst_ratio:.4g}{at}"
                         + (f" (probable tier {self.worst_ratio_probable:.4g})" if self.worst_ratio_probable is not None else ""))
        mt = self.metrics
        parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                 for k, v in asdict(mt).items() if v is not None]
        if parts:
            lines.append("  metrics: " + ", ".join(parts))
        if self.reproduce:
            lines.append(f"  reproduce: {self.reproduce}")
        return "\n".join(lines)

    def _bound_lines(self, m: Mismatch) -> list[str]:
        if m.bound is None:
            return []
        p = f"{self.failure_probability:.0e}" if self.failure_probability is not None else "?"
        why = f"independent mean-zero roundings exceed it with probability < {p} per element"
        if self.status == Verdict.SUSPECT.value:
            return [f"  error {m.error!r} exceeds probable bound {m.bound_probable!r} ({why})",
                    f"  but is within the rigorous bound {m.bound!r}"]
        tier = f"; probable bound {m.bound_probable!r}" if m.bound_probable is not None else ""
        return [f"  error {m.error!r} exceeds bound {m.bound!r} (rigorous{tier})"]

    def to_dict(self) -> dict:
        """JSON-ready dict (inf/NaN metrics become strings, as JSON has no such numbers)."""
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return str(v)
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v
        return clean(asdict(self))


def _bits(a: np.ndarray) -> np.ndarray:
    """Each element's bytes as one unsigned integer (little-endian value order)."""
    a = np.ascontiguousarray(a)
    size = a.dtype.itemsize
    if size not in (1, 2, 4, 8):
        raise ValueError(f"cannot compare elements of {size} bytes")
    return a.view(f"<u{size}")


def _hex(v: int, size: int) -> str:
    return "0x" + format(int(v), f"0{2 * size}x")


def _scalar(a: np.ndarray, idx: tuple[int, ...]):
    v = a[idx]
    if np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
        return int(v)
    return float(v)


def _block(idx: tuple[int, ...], block_size: int | None) -> tuple[int, ...] | None:
    if block_size is None or not idx:
        return None
    return idx[:-1] + (idx[-1] // block_size,)


def _mismatch(expected: np.ndarray, actual: np.ndarray, bad: np.ndarray, block_size, **extra) -> Mismatch:
    flat = int(np.flatnonzero(bad)[0])
    idx = tuple(int(i) for i in np.unravel_index(flat, bad.shape))
    size = actual.dtype.itemsize
    eb, ab = int(_bits(expected)[idx]), int(_bits(actual)[idx])
    x = eb ^ ab
    return Mismatch(idx, _block(idx, block_size), _hex(eb, size), _hex(ab, size), _hex(x, size),
                    [i for i in range(8 * size) if x >> i & 1], _scalar(expected, idx),
                    _scalar(actual, idx), count=int(bad.sum()), **extra)


def ulp_distance(expected: np.ndarray, actual: np.ndarray, dtype) -> np.ndarray:
    """Number of representable `dtype` values between two arrays of that dtype (int64).

    Bit patterns are mapped to a monotone integer line (sign-magnitude to two's complement), so
    -0 and +0 are 0 apart and the distance across zero counts the subnormals on both sides.
    """
    spec = float_spec(dtype)
    size = spec.dtype.itemsize
    def line(a):
        b = _bits(np.asarray(a).astype(spec.dtype)).astype(np.int64)
        sign = np.int64(1) << np.int64(8 * size - 1)
        return np.where(b & sign, -(b & (sign - 1)), b)
    return np.abs(line(actual) - line(expected))


def _metrics(reference: np.ndarray, actual: np.ndarray, out_dtype=None, rounded=None) -> Metrics:
    r = np.asarray(reference, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    fin = np.isfinite(r) & np.isfinite(a)
    if not fin.any():
        return Metrics()
    d = a[fin] - r[fin]
    noise, signal = float(np.sum(d * d)), float(np.sum(r[fin] ** 2))
    m = Metrics(max_abs=float(np.max(np.abs(d))))
    m.nmse = noise / signal if signal > 0 else (0.0 if noise == 0 else math.inf)
    m.sqnr_db = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    if out_dtype is not None:
        ref = rounded if rounded is not None else reference
        m.max_ulp = int(np.max(ulp_distance(np.asarray(ref)[fin], np.asarray(actual)[fin], out_dtype)))
    return m


def _float_name(dtype: np.dtype):
    try:
        return float_spec(dtype).name
    except ValueError:
        return None


def compare_exact(expected, actual, *, convention: str, block_size: int | None = None,
                  what: str = "bytes") -> Result:
    """Byte equality, element by element: BIT_EXACT or FAIL with the first differing element.

    block_size (elements along the last axis) lets the message name the quantization block.
    Shapes and dtypes must match; a mismatch there is itself a FAIL.
    """
    e, a = np.asarray(expected), np.asarray(actual)
    if e.shape != a.shape or e.dtype != a.dtype:
        return Result(Verdict.FAIL.value, convention, what,
                      detail=f"shape/dtype mismatch: expected {e.shape} {e.dtype}, actual {a.shape} {a.dtype}")
    bad = _bits(e) != _bits(a)
    fname = _float_name(e.dtype)
    numeric = np.issubdtype(e.dtype, np.number) or fname is not None
    metrics = _metrics(e, a, fname) if numeric and e.size else Metrics()
    if not bad.any():
        return Result(Verdict.BIT_EXACT.value, convention, what, metrics=metrics)
    return Result(Verdict.FAIL.value, convention, what, mismatch=_mismatch(e, a, bad, block_size), metrics=metrics,
                  detail=f"{int(bad.sum())} of {bad.size} elements differ")


def _ratio(err: np.ndarray, bound: np.ndarray, exact: np.ndarray, same_special: np.ndarray) -> np.ndarray:
    """error/bound for every element: 0 for a matching inf/NaN, inf for any other non-finite case."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(bound > 0, err / np.where(bound > 0, bound, 1), np.where(err == 0, 0.0, np.inf))
    r = np.where(np.isfinite(exact), r, np.where(same_special, 0.0, np.inf))
    return np.where(np.isnan(r), np.inf, r)


def compare_bounded(exact_f64, bound_f64, actual, *, out_dtype, convention: str, predicted=None,
                    block_size: int | None = None, what: str = "output", probable=None,
                    require_prediction: bool = False) -> Result:
    """Judge a float output against the exact result and its per-element bounds.

    BIT_EXACT if `predicted` (the modelled output, same dtype as actual) is given and equal byte
    for byte; with require_prediction=True (a kernel declared modelled) any other output is a
    FAIL naming the first element that differs from the prediction. Else BOUNDED if
    |actual - exact| <= probable bound everywhere (non-finite values must match the exact value
    exactly: inf for inf, NaN for NaN); SUSPECT if some element exceeds its probable bound but
    none its rigorous bound; else FAIL naming the first element outside the rigorous bound.
    The probable tier is `probable`, else bound_f64's own (an oracle.bounds.Bound), else the
    rigorous bound itself (no second tier). worst_ratio / worst_ratio_probable cover every element.
    """
    spec = float_spec(out_dtype)
    a = np.asarray(actual)
    if a.dtype != spec.dtype:
        return Result(Verdict.FAIL.value, convention, what, detail=f"dtype {a.dtype}, expected {spec.dtype}")
    x = np.asarray(exact_f64, dtype=np.float64)
    b = np.broadcast_to(np.asarray(bound_f64, dtype=np.float64), x.shape)
    bp = np.broadcast_to(probable_of(bound_f64) if probable is None else np.asarray(probable, np.float64), x.shape)
    bp = np.fmin(bp, b)  # the rigorous bound holds with certainty
    if a.shape != x.shape:
        return Result(Verdict.FAIL.value, convention, what, detail=f"shape {a.shape}, expected {x.shape}")
    if require_prediction and predicted is None:
        raise ValueError("require_prediction needs the modelled prediction (predicted=...)")
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = x.astype(spec.dtype)  # for the hex display and the ULP metric only
    af = a.astype(np.float64)
    with np.errstate(invalid="ignore"):
        err = np.abs(af - x)
        same_special = ~np.isfinite(x) & ((af == x) | (np.isnan(af) & np.isnan(x)))
        ok = same_special | (np.isfinite(x) & (err <= b))
        ok_p = same_special | (np.isfinite(x) & (err <= bp))
    ratio, ratio_p = _ratio(err, b, x, same_special), _ratio(err, bp, x, same_special)
    worst, worst_p, at = 0.0, 0.0, None
    if x.size:
        flat = int(np.argmax(ratio))
        worst, worst_p = float(ratio.flat[flat]), float(np.max(ratio_p))
        at = tuple(int(i) for i in np.unravel_index(flat, x.shape))
    common = dict(metrics=_metrics(x, a, spec, rounded), worst_ratio=worst, worst_ratio_probable=worst_p,
                  worst_index=at, failure_probability=FAILURE_PROBABILITY)
    if predicted is not None:
        p = np.asarray(predicted)
        same = p.shape == a.shape and p.dtype == a.dtype and np.array_equal(_bits(p), _bits(a))
        if same:
            return Result(Verdict.BIT_EXACT.value, convention, what, detail="equals the modelled prediction byte for byte",
                          **common)
        if require_prediction:
            if p.shape != a.shape or p.dtype != a.dtype:
                return Result(Verdict.FAIL.value, convention, what, **common,
                              detail=f"prediction is {p.shape} {p.dtype}, output {a.shape} {a.dtype}")
            bad = _bits(p) != _bits(a)
            return Result(Verdict.FAIL.value, convention, what, mismatch=_mismatch(p, a, bad, block_size), **common,
                          detail=f"{int(bad.sum())} of {bad.size} elements differ from the modelled prediction, "
                                 "which this kernel is declared to compute")
    if ok_p.all():
        return Result(Verdict.BOUNDED.value, convention, what, **common,
                      detail=f"within the derived bound; max ULP distance {common['metrics'].max_ulp}")
    status, bad = (Verdict.SUSPECT, ~ok_p) if ok.all() else (Verdict.FAIL, ~ok)
    first = tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape))
    mm = _mismatch(np.asarray(rounded), a, bad, block_size, bound=float(b[first]), error=float(err[first]),
                   bound_probable=float(bp[first]))
    mm.expected = float(x[first])
    detail = (f"{int(bad.sum())} of {bad.size} elements outside the probable bound (probability < "
              f"{FAILURE_PROBABILITY:.0e} each under independent mean-zero rounding), all within the rigorous bound"
              if status is Verdict.SUSPECT else f"{int(bad.sum())} of {bad.size} elements outside the derived bound")
    return Result(status.value, convention, what, mismatch=mm, detail=detail, **common)
