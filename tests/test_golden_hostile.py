"""Untrusted vector directories and results: every defect is one line on stderr and a non-zero exit.

Truncated or malformed GGUF, altered files, paths that leave the directory, shapes that
disagree with the data, NaN, absurd declared sizes: `qoracle verify` exits 2 with one line
(never a traceback, never a pass), or judges the case FAIL (exit 1) where the defect is in the
numbers themselves (NaN output, a missing result). Hypothesis mutates bytes of a valid results
GGUF and of the manifest: only clean errors or the right verdict come out.
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
from reports.vectors import export, parse_shapes

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
