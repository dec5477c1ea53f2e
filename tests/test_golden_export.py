"""`qoracle export`: byte-identical vectors, readable by gguf-py itself, raw layout for C harnesses."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import gguf
import numpy as np
import pytest

from oracle.conventions import get
from reports.cli import main
from reports.gguf_io import read_gguf
from reports.vectors import export, parse_shapes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _digests(d) -> dict[str, str]:
    return {f: hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest() for f in sorted(os.listdir(d))}


def test_same_arguments_same_bytes_across_processes(tmp_path):
    args = ["export", "--convention", "esimd.int4_gemv", "--shapes", "1x256x8,1x512x16", "--seed", "9", "--raw"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    env = {**os.environ, "PYTHONHASHSEED": "123", "TZ": "Asia/Tokyo", "LC_ALL": "C"}
    subprocess.run([sys.executable, "-m", "reports", *args, "--out", str(tmp_path / "b")], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert a == b and len(a) == 5  # 2 GGUF + 2 raw + manifest
    manifest = json.load(open(tmp_path / "a" / "manifest.json"))
    assert {f: h for f, h in a.items() if f != "manifest.json"} == manifest["files"]
    assert main(args[:-1] + ["--seed", "10", "--out", str(tmp_path / "c")]) == 0
    assert _digests(tmp_path / "c")["case_000_1x256x8.gguf"] != a["case_000_1x256x8.gguf"]


def test_gguf_read_back_with_gguf_py_and_against_the_convention(tmp_path):
    export("esimd.int4_gemv", parse_shapes("1x384x5"), 4, str(tmp_path))
    path = str(tmp_path / "case_000_1x384x5.gguf")
    r = gguf.GGUFReader(path)
    meta = {k: f.contents() for k, f in r.fields.items()}
    assert meta["qoracle.convention"] == "esimd.int4_gemv" and meta["qoracle.seed"] == 4
    assert meta["qoracle.shape"] == [1, 384, 5] and meta["qoracle.oracle_version"]
    raw = {t.name: np.array(t.data) for t in r.tensors}
    _, t = read_gguf(path)
    # the file's tensors are what the convention gives for the seeded inputs
    rng = np.random.default_rng([4, 1, 384, 5])
    w = rng.standard_normal((5, 384)).astype(np.float32)
    x = rng.standard_normal((1, 384)).astype(np.float16)
    conv = get("esimd.int4_gemv")
    qw = conv.quantize(w)
    packed = conv.pack(qw)
    assert np.array_equal(t["input.x"].view(np.uint16), x.view(np.uint16))
    assert np.array_equal(raw["weight.weight"].view(np.uint8), packed["weight"]) and t["weight.weight"].dtype == np.uint8
    assert np.array_equal(t["weight.scales"].view(np.uint16), packed["scales"].view(np.uint16))
    assert np.array_equal(t["intermediate.codes"], qw.codes)
    assert np.array_equal(t["intermediate.w_dequant"], conv.dequantize(qw))
    assert t["expected.exact"].dtype == np.float64 and np.all(t["expected.bound"] > 0)
    assert t["expected.model"].dtype == np.float16 and t["expected.model"].shape == (1, 5)


def test_raw_files_hold_the_same_arrays_at_the_manifest_offsets(tmp_path):
    m = export("ort.matmulnbits.int4.asym", parse_shapes("2x96x3"), 1, str(tmp_path), raw=True)
    case = m["cases"][0]
    _, t = read_gguf(str(tmp_path / case["file"]))
    blob = open(tmp_path / case["raw"]["file"], "rb").read()
    assert set(case["raw"]["tensors"]) == set(t) and "intermediate.zeros" in t  # an asymmetric convention has zeros
    for name, e in case["raw"]["tensors"].items():
        assert e["offset"] % 64 == 0
        a = np.frombuffer(blob[e["offset"]:e["offset"] + e["nbytes"]], dtype=t[name].dtype.newbyteorder("<"))
        assert np.array_equal(a.reshape(e["shape"]).view(np.uint8), t[name].view(np.uint8)), name
    assert case["model"] is None and "expected.model" not in t  # no kernel model for this convention


@pytest.mark.parametrize("spec,msg", [("1x0x4", ">= 1"), ("1x4", "MxKxN"), ("1x4x4,1x4x4", "repeat"),
                                      ("-1x4x4", "MxKxN"), ("1x100000x100000", "elements")])
def test_bad_shapes_are_one_line_errors(tmp_path, capsys, spec, msg):
    assert main(["export", "--convention", "ipex.int4.sym", f"--shapes={spec}", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err and "Traceback" not in err


def test_unknown_or_activation_convention(tmp_path, capsys):
    assert main(["export", "--convention", "nope", "--shapes", "1x8x8", "--out", str(tmp_path)]) == 2
    assert "unknown convention" in capsys.readouterr().err
    act = next(n for n in __import__("oracle.conventions", fromlist=["names"]).names("activation"))
    assert main(["export", "--convention", act, "--shapes", "1x8x8", "--out", str(tmp_path)]) == 2
    assert "activation convention" in capsys.readouterr().err
