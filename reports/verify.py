"""`qoracle verify DIR RESULTS`: judge a vendor's outputs against golden vectors, offline.

Everything a vendor hands over is untrusted, and the vector directory is checked before use:
the manifest must be a JSON object of schema qoracle-vectors/1 (NaN and Infinity refused),
every path it names must stay inside its directory (no absolute paths, no `..`, no symbolic
links), every file's SHA-256 must match, and every case file must agree with the shapes the
manifest declares. RESULTS is a GGUF file holding one tensor per case (named by the case id),
or a directory of raw little-endian files named in the manifest (`result.raw_file`); its
tensors must have the declared dtype and shape. Any violation is a `BadInput` (one line,
exit status 2); nothing is loaded with pickle.

The expectations are not taken from the files: each case's exact value, both bound tiers,
dequantized weight and model output are recomputed with the oracle from the case's own inputs
(activations, packed weight, integer codes) and its convention (reports/vectors.expectations,
the code path `qoracle export` wrote them with). A stored expectation that disagrees with the
recomputation is a `BadInput` naming the tensor and the first element: vectors whose bounds
were inflated, or whose model output was replaced, cannot make a wrong result pass, even with
the manifest re-hashed.

Each case is judged with oracle.verdict.compare_bounded against the recomputed values:
BIT_EXACT when the output equals the model output byte for byte, BOUNDED when every element is
within its probable bound of the exact value, SUSPECT when some element exceeds the probable
bound but none the rigorous one, FAIL otherwise (NaN where the exact value is a number is a
FAIL, named as such). Failing elements are printed TestFloat-style, and the cases become an
offline run of a certificate (reports/certificate.py).
"""
from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass

import numpy as np

from oracle.verdict import Result, compare_bounded, ulp_distance
from reports.gguf_io import MAX_FILE_BYTES, one_line, read_gguf
from reports.vectors import ACC, OUT_DTYPE, SCHEMA, declared_order, expectations, sha256_file

__all__ = ["BadInput", "load_manifest", "safe_path", "read_results", "verify", "RATIO_BINS"]

MAX_MANIFEST_BYTES = 16 << 20
MAX_CASES = 10000
# error/bound histogram: ratio == 0, (0, 1/64), [1/64, 1/16), [1/16, 1/4), [1/4, 1/2), [1/2, 1], > 1 (outside)
RATIO_BINS = [0.0, 1 / 64, 1 / 16, 1 / 4, 1 / 2, 1.0]
SHOW = 5  # failing elements printed per case
# a stored exact value may differ from the recomputed one by float64 summation order (another BLAS):
# at most 2 gamma_{K+1}(fp64) sum |t|, below 2^-21 of the fp32 bound of any declared order
EXACT_SLACK = 2.0 ** -12  # of the recomputed rigorous bound
BOUND_SLACK = 2.0 ** -20  # relative, for the stored bounds


class BadInput(ValueError):
    """Untrusted input that cannot be judged: a one-line reason, exit status 2."""


def _reject_constant(name: str):
    raise BadInput(f"manifest.json: {name} where a number belongs")


def safe_path(base: str, rel: object, what: str) -> str:
    """base/rel, refusing anything that leaves base: absolute paths, '..', symbolic links, odd names."""
    if not isinstance(rel, str) or not rel or "\0" in rel or "\\" in rel:
        raise BadInput(f"{what}: path {rel!r} is not a plain relative file name")
    if os.path.isabs(rel) or rel.startswith("/"):
        raise BadInput(f"{what}: path {rel!r} is absolute; it must stay inside {base}")
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BadInput(f"{what}: path {rel!r} leaves (or does not name a file in) {base}")
    cur = os.path.abspath(base)
    for p in parts:
        cur = os.path.join(cur, p)
        if os.path.islink(cur):
            raise BadInput(f"{what}: path {rel!r} goes through a symbolic link; refusing to follow it")
    real_base = os.path.realpath(base)
    if os.path.commonpath([os.path.realpath(cur), real_base]) != real_base:
        raise BadInput(f"{what}: path {rel!r} resolves outside {base}")
    return cur


def _regular(path: str, what: str, limit: int) -> int:
    try:
        st = os.lstat(path)
    except OSError as e:
        raise BadInput(f"{what}: cannot open ({one_line(e)})") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{what}: not a regular file")
    if st.st_size > limit:
        raise BadInput(f"{what}: {st.st_size} bytes is over the {limit}-byte limit")
    return st.st_size


def _shape(v: object, n: int | None, what: str) -> list[int]:
    if (not isinstance(v, list) or (n is not None and len(v) != n) or len(v) > 8
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 1 << 28 for d in v)):
        raise BadInput(f"{what}: shape {v!r} is not a list of {n or 'some'} non-negative integers")
    if math.prod(v) > 1 << 28:
        raise BadInput(f"{what}: shape {v!r} declares an absurd number of elements")
    return v


def load_manifest(vec_dir: str) -> dict:
    """manifest.json of a vector directory, structurally checked, every file's hash verified."""
    if not os.path.isdir(vec_dir):
        raise BadInput(f"{vec_dir}: not a directory of golden vectors")
    path = safe_path(vec_dir, "manifest.json", "manifest")
    _regular(path, "manifest.json", MAX_MANIFEST_BYTES)
    try:
        with open(path, "rb") as f:
            m = json.loads(f.read().decode("utf-8"), parse_constant=_reject_constant)
    except BadInput:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise BadInput(f"manifest.json: not valid JSON ({one_line(e)})") from None
    if not isinstance(m, dict) or m.get("schema") != SCHEMA:
        raise BadInput(f"manifest.json: schema is not {SCHEMA!r}")
    files, cases = m.get("files"), m.get("cases")
    if not isinstance(files, dict) or not isinstance(cases, list) or not cases or len(cases) > MAX_CASES:
        raise BadInput("manifest.json: needs a 'files' object and a non-empty 'cases' list")
    if not isinstance(m.get("convention"), str):
        raise BadInput("manifest.json: 'convention' must be a string")
    order, lanes = declared_order(m["convention"])
    want = {"accumulation": ACC, "order": order, "lanes": lanes, "out_dtype": OUT_DTYPE}
    got = m.get("declared")
    if not isinstance(got, dict) or any(got.get(key) != v for key, v in want.items()):
        raise BadInput(f"manifest.json: 'declared' is not what the oracle declares for {m['convention']!r} ({want})")
    for rel, digest in files.items():
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise BadInput(f"manifest.json: {rel!r} has no SHA-256 hex digest")
        p = safe_path(vec_dir, rel, "manifest.json files")
        _regular(p, rel, MAX_FILE_BYTES)
        if sha256_file(p) != digest:
            raise BadInput(f"{rel}: SHA-256 does not match the manifest (file altered or corrupted)")
    ids = set()
    for i, c in enumerate(cases):
        where = f"manifest.json case {i}"
        if not isinstance(c, dict) or not isinstance(c.get("id"), str) or not c["id"].replace("_", "").replace("x", "").isalnum():
            raise BadInput(f"{where}: needs an alphanumeric 'id'")
        if c["id"] in ids:
            raise BadInput(f"{where}: id {c['id']!r} repeats")
        ids.add(c["id"])
        _shape(c.get("shape"), 3, where)
        if c.get("file") not in files:
            raise BadInput(f"{where}: file {c.get('file')!r} is not listed (with its hash) in 'files'")
        r = c.get("result")
        if not isinstance(r, dict) or r.get("dtype") != "float16" or not isinstance(r.get("tensor"), str):
            raise BadInput(f"{where}: 'result' must name a float16 tensor")
        _shape(r.get("shape"), 2, where)
        safe_path(vec_dir, r.get("raw_file"), where)  # the name must be safe wherever the results live
    return m


def read_results(results: str, manifest: dict) -> dict[str, np.ndarray]:
    """{case id: array} from a results GGUF or a directory of raw little-endian files."""
    out: dict[str, np.ndarray] = {}
    if os.path.isdir(results):
        for c in manifest["cases"]:
            r = c["result"]
            p = safe_path(results, r["raw_file"], "results")
            if not os.path.lexists(p):
                continue  # judged as missing
            size = _regular(p, r["raw_file"], MAX_FILE_BYTES)
            want = math.prod(r["shape"]) * 2
            if size != want:
                raise BadInput(f"{r['raw_file']}: {size} bytes, but a float16 {tuple(r['shape'])} result is {want} bytes")
            with open(p, "rb") as f:
                out[c["id"]] = np.frombuffer(f.read(), dtype="<f2").astype(np.float16).reshape(r["shape"])
        return out
    if os.path.islink(results):
        raise BadInput(f"{results}: is a symbolic link; refusing to follow it")
    try:
        _, tensors = read_gguf(results, os.path.basename(results))
    except ValueError as e:
        raise BadInput(str(e)) from None
    for c in manifest["cases"]:
        r = c["result"]
        a = tensors.get(r["tensor"])
        if a is None:
            continue
        if a.dtype != np.float16 or list(a.shape) != r["shape"]:
            raise BadInput(f"{os.path.basename(results)}: tensor {r['tensor']!r} is {a.dtype} {a.shape}, "
                           f"the manifest declares float16 {tuple(r['shape'])}")
        out[c["id"]] = a
    return out


@dataclass
class Judged:
    case: dict
    result: Result
    lines: list[str]
    record: dict


def _load_case(vec_dir: str, c: dict) -> dict[str, np.ndarray]:
    try:
        meta, t = read_gguf(safe_path(vec_dir, c["file"], c["id"]), c["file"])
    except ValueError as e:
        raise BadInput(str(e)) from None
    m, k, n = c["shape"]
    need = {"input.x": (m, k), "expected.exact": (m, n), "expected.bound": (m, n)}
    for name, shp in need.items():
        if name not in t or t[name].shape != shp:
            got = t[name].shape if name in t else "missing"
            raise BadInput(f"{c['file']}: tensor {name} is {got}, the manifest's shape {m}x{k}x{n} needs {shp}")
    if "expected.model" in t and t["expected.model"].shape != (m, n):
        raise BadInput(f"{c['file']}: expected.model is {t['expected.model'].shape}, needs {(m, n)}")
    if meta.get("qoracle.case") != c["id"] or list(meta.get("qoracle.shape", [])) != [m, k, n]:
        raise BadInput(f"{c['file']}: its metadata names case {meta.get('qoracle.case')!r} shape "
                       f"{meta.get('qoracle.shape')}, the manifest {c['id']!r} {[m, k, n]}")
    if (c.get("model") or "") != meta.get("qoracle.model", ""):
        raise BadInput(f"manifest.json case {c['id']}: model {c.get('model')!r} is not the one its file was made with")
    if list(c["result"]["shape"]) != [m, n]:
        raise BadInput(f"manifest.json case {c['id']}: result shape {c['result']['shape']} disagrees with {m}x{k}x{n}")
    if not (np.all(np.isfinite(t["expected.bound"])) and np.all(t["expected.bound"] >= 0)):
        raise BadInput(f"{c['file']}: expected.bound holds NaN, infinite or negative values")
    return _recomputed(c, meta, t)


def _recomputed(c: dict, meta: dict, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The case's tensors with every intermediate and expectation recomputed by the oracle from its inputs."""
    m, k, n = c["shape"]
    conv = meta.get("qoracle.convention")
    if "intermediate.codes" not in t or t["intermediate.codes"].shape != (n, k):
        raise BadInput(f"{c['file']}: intermediate.codes is missing or not {(n, k)}")
    packed = {key[len("weight."):]: v for key, v in t.items() if key.startswith("weight.")}
    try:
        fresh, desc = expectations(conv, t["input.x"], packed, t["intermediate.codes"], t.get("intermediate.zeros"))
    except Exception as e:  # untrusted arrays may break any step of the recomputation
        raise BadInput(f"{c['file']}: its expectations cannot be recomputed from its inputs ({one_line(e)})") from None
    if (desc or "") != meta.get("qoracle.model", ""):
        raise BadInput(f"{c['file']}: names model {meta.get('qoracle.model')!r}, the oracle's is {desc!r}")
    bound = fresh["expected.bound"]
    for name, v in fresh.items():
        if name not in t:
            if name in ("expected.bound_probable",):
                continue  # vectors written before the probable tier: nothing stored to check
            raise BadInput(f"{c['file']}: tensor {name} is missing")
        s = t[name]
        if s.shape != v.shape or s.dtype != v.dtype:
            raise BadInput(f"{c['file']}: {name} is {s.dtype} {s.shape}, the recomputation {v.dtype} {v.shape}")
        if name == "expected.exact":
            with np.errstate(invalid="ignore"):
                bad = ~(np.abs(s - v) <= EXACT_SLACK * bound)
        elif name.startswith("expected.bound"):
            with np.errstate(invalid="ignore"):
                bad = ~(np.abs(s - v) <= BOUND_SLACK * v)
        else:
            bad = np.ascontiguousarray(s).view(f"u{s.itemsize}") != np.ascontiguousarray(v).view(f"u{v.itemsize}")
        if np.any(bad):
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise BadInput(f"{c['file']}: stored {name} disagrees with the oracle's recomputation from the case's "
                           f"inputs ({int(np.sum(bad))} elements; first {at}: stored {s[at].item()!r}, "
                           f"recomputed {v[at].item()!r})")
    return {**t, **fresh}


def _hex16(v: np.float16) -> str:
    return f"0x{int(np.asarray(v, dtype=np.float16).view(np.uint16)):04x}"


def _testfloat(cid: str, t: dict[str, np.ndarray], y: np.ndarray, bad: np.ndarray) -> list[str]:
    """TestFloat-style lines: inputs, observed, expected for the first few failing elements."""
    exact, bound = t["expected.exact"], t["expected.bound"]
    model = t.get("expected.model")
    idx = np.argwhere(bad)
    lines = [f"{cid}: {len(idx)} of {y.size} elements fail"]
    for i, j in idx[:SHOW]:
        x = t["input.x"][i]
        inputs = f"x[{i}, 0:4]={[float(v) for v in x[:4]]}"
        if "weight.weight" in t:
            inputs += f" weight[{j}, 0:4]={' '.join(f'{b:02x}' for b in t['weight.weight'][j].reshape(-1)[:4].view(np.uint8))}"
        if "weight.scales" in t:
            inputs += f" scales[{j}, 0:2]={[float(v) for v in t['weight.scales'][j].reshape(-1)[:2]]}"
        with np.errstate(invalid="ignore"):
            err = abs(float(y[i, j]) - float(exact[i, j]))
        exp16 = np.float16(exact[i, j]) if np.isfinite(exact[i, j]) else np.float16(np.nan)
        line = (f"  y[{i},{j}]  observed {_hex16(y[i, j])} ({float(y[i, j])!r})  expected {_hex16(exp16)} "
                f"(exact {float(exact[i, j])!r} +- {float(bound[i, j]):.3g})  error {err:.3g}")
        if model is not None:
            line += f"  model {_hex16(model[i, j])}"
        lines += [line, f"      inputs: {inputs}"]
    if len(idx) > SHOW:
        lines.append(f"  ... {len(idx) - SHOW} more")
    return lines


def _histograms(t: dict[str, np.ndarray], y: np.ndarray) -> dict:
    """Per-element error/bound ratio histogram (edges RATIO_BINS, plus > 1) and ULP distances to the model."""
    exact, bound = t["expected.exact"], t["expected.bound"]
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.abs(y.astype(np.float64) - exact)
        ratio = np.where(bound > 0, err / np.where(bound > 0, bound, 1), np.where(err == 0, 0, np.inf))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    counts = [int(np.sum(ratio == 0))]
    counts += [int(np.sum((ratio > 0 if lo == 0 else ratio >= lo) & (ratio < hi)))
               for lo, hi in zip(RATIO_BINS[:-2], RATIO_BINS[1:-1])]
    counts += [int(np.sum((ratio >= RATIO_BINS[-2]) & (ratio <= 1))), int(np.sum(ratio > 1))]
    h = {"ratio_edges": RATIO_BINS, "ratio_counts": counts}
    if "expected.model" in t:
        fin = np.isfinite(y) & np.isfinite(t["expected.model"])
        d = ulp_distance(t["expected.model"][fin], y[fin], "fp16") if fin.any() else np.zeros(0, np.int64)
        h["model_ulp_counts"] = {str(u): int(c) for u, c in zip(*np.unique(np.minimum(d, 16), return_counts=True))}
    return h


def judge_case(vec_dir: str, c: dict, y: np.ndarray | None, convention: str, kernel: str) -> Judged:
    t = _load_case(vec_dir, c)
    m, k, n = c["shape"]
    what = f"{kernel} case {c['id']}"
    golden = {"file": c["file"]}
    rec = {"nodeid": f"offline::{c['id']}", "kernel": kernel, "isa_requested": "offline", "isa_observed": "",
           "shape": [m, k, n], "golden": golden, "model": c.get("model")}
    if y is None:
        r = Result("FAIL", convention, what, detail=f"no result for this case (tensor {c['result']['tensor']!r} / "
                                                     f"file {c['result']['raw_file']!r} missing)")
        return Judged(c, r, [f"{c['id']}: FAIL, no result given"], {**rec, **r.to_dict()})
    exact = t["expected.exact"]
    nan_bad = np.isnan(y) & np.isfinite(exact)
    r = compare_bounded(exact, t["expected.bound"], y, out_dtype="fp16", convention=convention,
                        predicted=t.get("expected.model"), what=what, probable=t["expected.bound_probable"])
    lines = []
    if not r.ok:
        limit = t["expected.bound_probable"] if r.status == "SUSPECT" else t["expected.bound"]
        with np.errstate(invalid="ignore"):
            bad = ~((np.abs(y.astype(np.float64) - exact) <= limit)
                    | (~np.isfinite(exact) & ((y == exact) | np.isnan(y) & np.isnan(exact))))
        if nan_bad.any():
            first = tuple(int(i) for i in np.argwhere(nan_bad)[0])
            r.detail = f"{int(nan_bad.sum())} NaN values where a number belongs (first at {first}); " + r.detail
        lines = _testfloat(c["id"], t, y, bad)
    rec.update(r.to_dict())
    rec["histogram"] = _histograms(t, y)
    return Judged(c, r, lines, rec)


def verify(vec_dir: str, results: str, *, kernel: str = "offline", out_dir: str | None = None,
           echo=print) -> tuple[dict, list[Judged]]:
    """Judge every case; return (certificate, judged cases). Raises BadInput on untrusted garbage."""
    from reports.certificate import build, write_reports

    manifest = load_manifest(vec_dir)
    outputs = read_results(results, manifest)
    judged = [judge_case(vec_dir, c, outputs.get(c["id"]), manifest["convention"], kernel) for c in manifest["cases"]]
    for j in judged:
        ratio = (f"worst error/bound {j.result.worst_ratio:.3g} (probable tier {j.result.worst_ratio_probable:.3g})"
                 if j.result.worst_ratio is not None else "")
        echo(f"{j.result.status:9s} {j.case['id']:24s} " + ("; ".join(x for x in (j.result.detail, ratio) if x)
                                                             if not j.result.ok else ratio or j.result.detail))
        for line in j.lines:
            echo(line)
    vectors = {"dir": os.path.abspath(vec_dir), "manifest_sha256": sha256_file(os.path.join(vec_dir, "manifest.json")),
               "files": manifest["files"], "convention": manifest["convention"], "seed": manifest.get("seed"),
               "results": os.path.abspath(results)}
    for j in judged:
        j.record["golden"]["sha256"] = manifest["files"][j.case["file"]]
        j.record["reproduce"] = f"qoracle verify {vec_dir} {results}"
    run = {"isa_requested": "offline", "pytest_exit_code": None, "cases": [j.record for j in judged], "vectors": vectors}
    cert = build([run], kernels=[kernel], profile="offline")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        for p in write_reports(cert, out_dir):
            echo(f"== wrote {p}")
    return cert, judged
