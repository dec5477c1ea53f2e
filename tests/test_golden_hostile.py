"""Untrusted vector directories and results: every defect is one line on stderr and a non-zero exit.

Truncated or malformed GGUF, altered files, paths that leave the directory, shapes that
disagree with the data, NaN, absurd declared sizes: `qoracle verify` exits 2 with one line
(never a traceback, never a pass), or judges the case FAIL (exit 1) where the defect is in the
numbers themselves (NaN output, a missing result). Hypothesis mutates bytes of a valid results
GGUF and of the manifest: only clean errors or the right verdict come out. Expectations are
recomputed from each case's inputs: a case file whose bounds, exact values or model output were
rewritten (and the manifest re-hashed) is refused, never used to pass a wrong result.
"""
from __future__ import annotations

import json
import os
import shutil
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports.cli import main
from reports.emulate import emulate
from reports.gguf_io import read_gguf, write_gguf
from reports.vectors import export, parse_shapes, sha256_file

REPORTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reports")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    export("esimd.int4_gemv", parse_shapes("1x256x4,1x384x8"), 2, str(d / "vec"), raw=True)
    emulate(str(d / "vec"), "esimd", str(d / "good.gguf"))
    emulate(str(d / "vec"), "esimd", str(d / "raw"), raw=True)
    return d


@pytest.fixture
def work(base, tmp_path):
    for name in ("vec", "raw"):
        shutil.copytree(base / name, tmp_path / name)
    shutil.copy(base / "good.gguf", tmp_path / "good.gguf")
    return tmp_path


def _verify(capsys, vec, res) -> tuple[int, str, str]:
    rc = main(["verify", str(vec), str(res)])
    out, err = capsys.readouterr()
    return rc, out, err


def _bad(capsys, vec, res, *needles) -> str:
    rc, _, err = _verify(capsys, vec, res)
    line = err.strip()
    assert rc == 2, err
    assert "\n" not in line and "Traceback" not in line and line.startswith("qoracle verify: error:")
    for n in needles:
        assert n in line, line
    return line


def _manifest(work) -> dict:
    return json.load(open(work / "vec" / "manifest.json"))


def _save(work, m) -> None:
    (work / "vec" / "manifest.json").write_text(json.dumps(m))


def test_the_untouched_inputs_pass(work, capsys):
    assert _verify(capsys, work / "vec", work / "good.gguf")[0] == 0
    assert _verify(capsys, work / "vec", work / "raw")[0] == 0


@pytest.mark.parametrize("keep", [0, 3, 23, 200, -100, -20])
def test_truncated_results_gguf(work, capsys, keep):
    """Cuts in the header, the metadata, the tensor infos and the data (the last 16 bytes are alignment padding)."""
    data = (work / "good.gguf").read_bytes()
    (work / "t.gguf").write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])
    _bad(capsys, work / "vec", work / "t.gguf")


def test_truncated_or_altered_vector_file_breaks_its_hash(work, capsys):
    p = work / "vec" / "case_001_1x384x8.gguf"
    p.write_bytes(p.read_bytes()[:-10])
    _bad(capsys, work / "vec", work / "good.gguf", "case_001_1x384x8.gguf", "SHA-256 does not match")


def test_manifest_hash_mismatch(work, capsys):
    m = _manifest(work)
    m["files"]["case_000_1x256x4.bin"] = "0" * 64
    _save(work, m)
    _bad(capsys, work / "vec", work / "good.gguf", "case_000_1x256x4.bin", "SHA-256")


@pytest.mark.parametrize("path,msg", [("../outside.gguf", "leaves"), ("/etc/passwd", "absolute"),
                                      ("sub/../../x", "leaves"), ("a\\..\\b", "plain relative")])
def test_manifest_paths_that_leave_the_directory(work, capsys, path, msg):
    m = _manifest(work)
    m["files"][path] = "0" * 64
    _save(work, m)
    _bad(capsys, work / "vec", work / "good.gguf", msg)


def test_symlinks_are_refused(work, capsys, tmp_path):
    outside = tmp_path / "elsewhere.gguf"
    shutil.copy(work / "vec" / "case_000_1x256x4.gguf", outside)
    (work / "vec" / "case_000_1x256x4.gguf").unlink()
    os.symlink(outside, work / "vec" / "case_000_1x256x4.gguf")
    _bad(capsys, work / "vec", work / "good.gguf", "symbolic link")
    os.symlink(work / "good.gguf", work / "link.gguf")
    (work / "vec" / "case_000_1x256x4.gguf").unlink()
    shutil.copy(outside, work / "vec" / "case_000_1x256x4.gguf")
    _bad(capsys, work / "vec", work / "link.gguf", "symbolic link")


def test_raw_result_name_that_leaves_the_results_directory(work, capsys):
    m = _manifest(work)
    m["cases"][0]["result"]["raw_file"] = "../good.gguf"
    _save(work, m)
    _bad(capsys, work / "vec", work / "raw", "leaves")


def test_shapes_that_disagree_with_the_data(work, capsys):
    p = work / "raw" / "000_1x256x4.out.bin"
    p.write_bytes(p.read_bytes() + b"\0\0")
    _bad(capsys, work / "vec", work / "raw", "10 bytes", "(1, 4)")
    _, t = read_gguf(str(work / "good.gguf"))
    t["000_1x256x4"] = np.zeros((1, 5), np.float16)
    write_gguf(str(work / "wrong.gguf"), t, {})
    _bad(capsys, work / "vec", work / "wrong.gguf", "000_1x256x4", "(1, 4)")
    m = _manifest(work)
    m["cases"][1]["shape"] = [1, 384, 9]
    m["cases"][1]["result"]["shape"] = [1, 9]
    _save(work, m)
    _bad(capsys, work / "vec", work / "good.gguf")


def test_nan_in_results_is_a_fail_not_a_pass(work, capsys):
    _, t = read_gguf(str(work / "good.gguf"))
    t["001_1x384x8"][0, 3] = np.nan
    write_gguf(str(work / "nan.gguf"), t, {})
    rc, out, err = _verify(capsys, work / "vec", work / "nan.gguf")
    assert rc == 1 and "Traceback" not in err
    assert "1 NaN values where a number belongs (first at (0, 3))" in out
    assert "y[0,3]  observed 0x7e00" in out


def test_nan_in_manifest(work, capsys):
    text = (work / "vec" / "manifest.json").read_text().replace('"seed": 2', '"seed": NaN')
    (work / "vec" / "manifest.json").write_text(text)
    _bad(capsys, work / "vec", work / "good.gguf", "NaN where a number belongs")


def test_missing_result_is_a_fail(work, capsys):
    (work / "raw" / "001_1x384x8.out.bin").unlink()
    rc, out, _ = _verify(capsys, work / "vec", work / "raw")
    assert rc == 1 and "no result given" in out


def _patched_dim(data: bytes, name: str, value: int) -> bytes:
    """The results GGUF with the first dimension of tensor `name` replaced in its tensor info."""
    key = struct.pack("<Q", len(name)) + name.encode()
    at = data.rindex(key) + len(key) + 4  # skip n_dims (uint32)
    return data[:at] + struct.pack("<Q", value) + data[at + 8:]


@pytest.mark.parametrize("value", [1 << 60, (1 << 64) - 1, 1 << 31])
def test_absurd_declared_sizes(work, capsys, value):
    bad = _patched_dim((work / "good.gguf").read_bytes(), "000_1x256x4", value)
    (work / "huge.gguf").write_bytes(bad)
    _bad(capsys, work / "vec", work / "huge.gguf", "huge.gguf")
    data = bytearray((work / "good.gguf").read_bytes())
    data[8:16] = struct.pack("<Q", 1 << 60)  # tensor count
    (work / "count.gguf").write_bytes(bytes(data))
    _bad(capsys, work / "vec", work / "count.gguf", "header declares")


def test_a_pickle_is_never_loaded(work, capsys):
    import pickle

    (work / "evil.pkl").write_bytes(pickle.dumps({"000_1x256x4": np.zeros((1, 4), np.float16)}))
    _bad(capsys, work / "vec", work / "evil.pkl", "not a GGUF file")
    for name in os.listdir(REPORTS):
        if name.endswith(".py"):
            src = open(os.path.join(REPORTS, name), encoding="utf-8").read()
            assert "import pickle" not in src and "np.load(" not in src and "allow_pickle=True" not in src, name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=6),
       truncate=st.one_of(st.none(), st.integers(0, 1 << 20)))
def test_fuzzed_results_gguf(base, tmp_path_factory, capsys, cuts, truncate):
    good = (base / "good.gguf").read_bytes()
    data = bytearray(good)
    for pos, byte in cuts:
        data[pos % len(data)] = byte
    if truncate is not None:
        data = data[:truncate % (len(data) + 1)]
    p = tmp_path_factory.mktemp("fz") / "r.gguf"
    p.write_bytes(bytes(data))
    rc, out, err = _verify(capsys, base / "vec", p)
    assert "Traceback" not in err and "Traceback" not in out
    if rc == 2:
        assert len(err.strip().splitlines()) == 1
    else:
        _, mutated = read_gguf(str(p))
        _, original = read_gguf(str(base / "good.gguf"))
        same = all(k in mutated and np.array_equal(mutated[k].view(np.uint16), v.view(np.uint16))
                   for k, v in original.items())
        assert (rc == 0) == same  # a pass only when the results are the right ones


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4))
def test_fuzzed_manifest(base, tmp_path_factory, capsys, cuts):
    d = tmp_path_factory.mktemp("fm")
    shutil.copytree(base / "vec", d / "vec")
    text = bytearray((base / "vec" / "manifest.json").read_bytes())
    for pos, byte in cuts:
        text[pos % len(text)] = byte
    (d / "vec" / "manifest.json").write_bytes(bytes(text))
    rc, out, err = _verify(capsys, d / "vec", base / "good.gguf")
    assert "Traceback" not in err and rc in (0, 1, 2)
    if rc == 2:
        assert len(err.strip().splitlines()) == 1
    if rc == 0:  # a pass only when what the verdict depends on is unchanged
        orig = json.loads((base / "vec" / "manifest.json").read_text())
        new = json.loads(bytes(text).decode("utf-8"))
        judged = ("id", "shape", "file", "result", "model")
        assert new["files"] == orig["files"]
        assert [{k: c[k] for k in judged} for c in new["cases"]] == [{k: c[k] for k in judged} for c in orig["cases"]]


def _rewrite_case(work, case_file: str, **tensors) -> None:
    """Replace tensors of a case file and re-hash it in the manifest, as a forger would."""
    p = work / "vec" / case_file
    meta, t = read_gguf(str(p))
    meta = {k: v for k, v in meta.items() if k.startswith("qoracle.") and k != "qoracle.dtypes"}
    t.update(tensors)
    write_gguf(str(p), t, meta)
    m = _manifest(work)
    m["files"][case_file] = sha256_file(str(p))
    _save(work, m)


def _garbage(work) -> str:
    _, t = read_gguf(str(work / "good.gguf"))
    t = {k: np.full_like(v, 1000.0) for k, v in t.items()}
    write_gguf(str(work / "garbage.gguf"), t, {})
    return str(work / "garbage.gguf")


def test_garbage_results_fail_against_honest_vectors(work, capsys):
    rc, out, _ = _verify(capsys, work / "vec", _garbage(work))
    assert rc == 1 and "FAIL" in out


@pytest.mark.parametrize("tensor", ["expected.bound", "expected.bound_probable"])
def test_inflated_bounds_with_rehashed_manifest_are_refused(work, capsys, tensor):
    f = "case_000_1x256x4.gguf"
    _, t = read_gguf(str(work / "vec" / f))
    _rewrite_case(work, f, **{tensor: np.full_like(t[tensor], 1e30)})
    line = _bad(capsys, work / "vec", _garbage(work), f, f"stored {tensor} disagrees with the oracle's recomputation",
                "stored 1e+30")
    assert "recomputed 0.0" in line


def test_shifted_exact_values_are_refused(work, capsys):
    f = "case_001_1x384x8.gguf"
    _, t = read_gguf(str(work / "vec" / f))
    exact = t["expected.exact"].copy()
    exact[0, 5] += t["expected.bound"][0, 5] * 0.01  # a hundredth of the bound is already too much
    _rewrite_case(work, f, **{"expected.exact": exact})
    _bad(capsys, work / "vec", work / "good.gguf", f, "stored expected.exact disagrees", "(0, 5)")


def test_replaced_model_output_is_refused(work, capsys):
    """A forged model equal to the forged results would otherwise make them BIT_EXACT."""
    f = "case_000_1x256x4.gguf"
    _rewrite_case(work, f, **{"expected.model": np.full((1, 4), 1000.0, np.float16)})
    _bad(capsys, work / "vec", _garbage(work), f, "stored expected.model disagrees")


def test_weights_that_are_not_the_packing_of_the_codes_are_refused(work, capsys):
    f = "case_000_1x256x4.gguf"
    _, t = read_gguf(str(work / "vec" / f))
    codes = t["intermediate.codes"].copy()
    codes[0, 0] ^= 1
    _rewrite_case(work, f, **{"intermediate.codes": codes})
    _bad(capsys, work / "vec", work / "good.gguf", f, "cannot be recomputed", "packing of intermediate.codes")


def test_declared_accumulation_must_be_the_oracles(work, capsys):
    m = _manifest(work)
    m["declared"]["order"] = "any"  # looser than the ESIMD kernel's 128 lanes
    _save(work, m)
    _bad(capsys, work / "vec", work / "good.gguf", "'declared' is not what the oracle declares")


def test_fp16_accumulating_kernel_is_suspect_offline(tmp_path):
    """Eight fp16 FMA lanes: within the rigorous fp32 bound of the 'any' order, outside its probable tier."""
    from reports.verify import judge_case, load_manifest

    export("ipex.int4.sym", parse_shapes("1x4096x16"), 5, str(tmp_path))
    m = load_manifest(str(tmp_path))
    c = m["cases"][0]
    _, t = read_gguf(str(tmp_path / c["file"]))
    x = t["input.x"][0].astype(np.float64)
    w = t["intermediate.w_dequant"].astype(np.float16).astype(np.float64)
    acc = np.zeros((w.shape[0], 8), np.float16)
    for i in range(0, x.size, 8):
        acc = (acc.astype(np.float64) + x[i:i + 8] * w[:, i:i + 8]).astype(np.float16)
    while acc.shape[1] > 1:
        acc = (acc[:, :acc.shape[1] // 2] + acc[:, acc.shape[1] // 2:]).astype(np.float16)
    j = judge_case(str(tmp_path), c, acc[:, 0][None, :], m["convention"], "fp16-lanes")
    assert j.result.status == "SUSPECT" and not j.result.ok and j.result.worst_ratio <= 1
    assert j.result.worst_ratio_probable > 1 and "fail" in j.lines[0]
