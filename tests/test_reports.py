"""Certificate reports: JSON schema 2, self-contained HTML (checked in headless Chromium), JUnit XML, markdown."""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET

import pytest

from reports.certificate import SCHEMA, build, read_benchmarks, write_reports
from reports.emulate import emulate
from reports.html import html_report
from reports.junit import junit_xml
from reports.vectors import export, parse_shapes
from reports.verify import verify

CHROMIUM = "/usr/bin/chromium"


def _case(status, kernel="esimd.int4_gemv", isa="avx2", shape=(1, 1024, 64), ratio=None, detail="", **kw):
    return {"nodeid": f"conformance/test_x.py::t[{status}]", "kernel": kernel, "isa_requested": isa,
            "isa_observed": "avx2" if isa != "scalar" else "default", "shape": list(shape), "status": status,
            "convention": "esimd.int4_gemv", "detail": detail, "worst_ratio": ratio,
            "reproduce": f"pytest conformance/test_x.py::t --isa {isa}", **kw}


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A certificate with two ISA runs of conformance-like cases, a skipped level, and a real offline run."""
    d = tmp_path_factory.mktemp("rep")
    export("esimd.int4_gemv", parse_shapes("1x256x16,1x512x32"), 1, str(d / "vec"))
    emulate(str(d / "vec"), "swapped-nibbles", str(d / "bad.gguf"))
    offline, _ = verify(str(d / "vec"), str(d / "bad.gguf"), kernel="esimd.int4_gemv", echo=lambda s: None)
    runs = [{"isa_requested": "avx2", "pytest_exit_code": 1, "cases": [
                _case("BIT_EXACT", ratio=0.2), _case("BOUNDED", ratio=0.7, shape=(1, 4096, 256)),
                _case("FAIL", shape=(4, 128, 8), detail="3 of 32 elements differ <script>alert(1)</script>",
                      mismatch={"index": [0, 3], "expected": 1.0, "actual": 2.0, "expected_hex": "0x3c00",
                                "actual_hex": "0x4000", "bound": 0.01, "count": 3})]},
            {"isa_requested": "scalar", "pytest_exit_code": 0, "cases": [
                _case("BOUNDED", isa="scalar", ratio=0.01), _case("CRASHED", isa="scalar", shape=(4, 128, 8), detail="SIGSEGV"),
                _case("UNAVAILABLE", kernel="torch.weight_int4pack_mm", isa="scalar", detail="no such op")]},
            {"isa_requested": "amx", "skipped": "the host has no amx_tile", "cases": [], "pytest_exit_code": None},
            offline["runs"][0]]
    bench = d / "bench.json"
    bench.write_text(json.dumps({"benchmarks": [{"name": "test_gemv", "fullname": "bench.py::test_gemv",
                                                 "stats": {"mean": 2e-3, "stddev": 1e-4, "rounds": 10},
                                                 "extra_info": {"bytes": 4e6, "peak_gbps": 20.0}}]}))
    return build(runs, kernels=["esimd*"], profile="quick", benchmarks=read_benchmarks(str(bench))), d


def test_json_schema_fields(cert):
    c, _ = cert
    assert c["schema"] == SCHEMA and c["summary"]["verdict"] == "FAILED"
    assert {"cpu", "machine", "isa_levels", "flags", "gpus"} <= set(c["host"])
    ident = c["kernels"]["esimd.int4_gemv"]
    assert ident["package"] == "custom-esimd-kernels-vllm" and ident["op"].startswith("torch.ops.")
    assert [i["requested"] for i in c["isa"]] == ["avx2", "scalar", "amx", "offline"]
    assert c["isa"][1]["observed"] == ["default"] and c["isa"][2]["skipped"].startswith("the host")
    assert c["vectors"][0]["convention"] == "esimd.int4_gemv" and len(c["vectors"][0]["manifest_sha256"]) == 64
    assert c["benchmarks"][0]["gbps"] == pytest.approx(4e6 / 2e-3 / 1e9)
    assert c["benchmarks"][0]["peak_fraction"] == pytest.approx(2.0 / 20.0)
    json.dumps(c, allow_nan=False)  # strict JSON: no NaN/Infinity tokens anywhere


def test_nothing_but_unavailable_is_not_a_pass():
    run = {"isa_requested": "native", "pytest_exit_code": 0, "cases": [_case("UNAVAILABLE")]}
    assert build([run], kernels=[], profile="quick")["summary"]["verdict"] == "EMPTY"


def test_html_is_self_contained_and_escaped(cert):
    c, _ = cert
    page = html_report(c)
    assert "<script" not in page.replace("&lt;script", "")  # the case detail's <script> is escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for bad in ("<link", " src=", "url(", "@import", "https://"):
        assert bad not in page, bad
    assert set(re.findall(r"https?://[^\"' ]+", page)) == {"http://www.w3.org/2000/svg"}  # a namespace, never fetched
    assert page.count("<svg") >= 3  # per-kernel ratio strips, per-element ratios, ULPs from the model
    assert "All cases" in page and "<th>avx2</th>" in page and "<th>offline</th>" in page
    assert page.count('<div class="fail') == 2 + 2  # FAIL, CRASHED, and the two offline FAIL cases
    assert "bench.py::test_gemv" in page and "no benchmark figures" not in page
    c2 = dict(c, benchmarks=None)
    assert "no benchmark figures" in html_report(c2)


def test_junit_xml_counts(cert):
    c, _ = cert
    root = ET.fromstring(junit_xml(c))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    avx2, scalar, amx = suites["qoracle --isa avx2"], suites["qoracle --isa scalar"], suites["qoracle --isa amx"]
    assert (avx2.get("tests"), avx2.get("failures"), avx2.get("errors")) == ("4", "1", "1")  # + pytest exit 1
    assert (scalar.get("errors"), scalar.get("skipped")) == ("1", "1")
    assert amx.get("skipped") == "1"
    offline = suites["qoracle --isa offline"]
    assert offline.get("failures") == offline.get("tests") == "2"
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites.values())


def test_write_reports_writes_four_files(cert, tmp_path):
    c, _ = cert
    paths = write_reports(c, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["certificate.json", "summary.md", "report.html", "junit.xml"]
    md = open(tmp_path / "summary.md").read()
    assert "FAILED" in md and "skipped, the host has no amx_tile" in md and "manifest SHA-256" in md
    assert md.startswith("# qoracle certificate: FAILED\n\n**FAILED: ")


def _png_size(path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


# Opens every collapsed section, then writes into the DOM whether the page is wider than the window.
_PROBE = ("<script>document.querySelectorAll('details').forEach(function(d){d.open=true});"
          "var e=document.documentElement;document.body.setAttribute('data-fits',String(e.scrollWidth<=innerWidth));"
          "document.body.setAttribute('data-width',e.scrollWidth+'/'+innerWidth)</script>")
LAPTOP = (1366, 768)


def _chromium(tmp_path, *args: str) -> str:
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={LAPTOP[0]},{LAPTOP[1]}"]
    return subprocess.run(flags + list(args), check=True, capture_output=True, timeout=90, text=True).stdout


def _fits(tmp_path, page: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(page.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    body = re.search(r"<body[^>]*>", _chromium(tmp_path, "--dump-dom", f"file://{path}")).group(0)
    return body


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (Debian package 'chromium')")
def test_report_renders_in_headless_chromium(cert, tmp_path):
    c, _ = cert
    unbroken = _case("FAIL", nodeid="conformance/test_x.py::t[" + "w" * 300 + "]", convention="c" * 150,
                     detail="d" * 600, reproduce="pytest " + "r" * 400)  # long words must wrap, not widen the page
    runs = [{**c["runs"][0], "cases": [*c["runs"][0]["cases"], unbroken]}, *c["runs"][1:]]
    c = build(runs, kernels=c["selection"]["kernels"], profile="quick")
    write_reports(c, str(tmp_path))
    url = "file://" + str(tmp_path / "report.html")
    png = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={png}", url)
    assert png.exists() and png.stat().st_size > 20_000 and _png_size(png) == LAPTOP
    dom = _chromium(tmp_path, "--dump-dom", url)
    for section in ("why", "counts", "new", "known", "errors", "matrix", "host", "packages"):
        assert f'id="{section}"' in dom and f'href="#{section}"' in dom, section
    assert dom.count("<svg") >= 3 and "FAILED: " in dom and "<details" in dom
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'data-fits="true"' in _fits(tmp_path, page, "probe.html")  # no horizontal overflow at laptop width
    # the probe can see overflow: the same page with one element wider than the window
    assert 'data-fits="false"' in _fits(tmp_path, page.replace("</body>", '<div style="width:3000px">x</div></body>'),
                                        "wide.html")
    if os.environ.get("QORACLE_KEEP_SCREENSHOT"):
        shutil.copy(png, os.environ["QORACLE_KEEP_SCREENSHOT"])
