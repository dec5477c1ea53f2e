"""The certificate's verdict follows its cases: any FAIL or CRASHED fails it, nothing judged is EMPTY."""
import json

from reports.certificate import SCHEMA, build, markdown, write_all


def _case(status, kernel="k.one", isa="avx2"):
    return {"nodeid": "conformance/test_x.py::t", "kernel": kernel, "isa_requested": isa, "status": status,
            "detail": "first bad element (0, 3)", "reproduce": "pytest conformance/test_x.py::t --isa avx2"}


def _run(*cases, rc=0, isa="avx2"):
    return {"isa_requested": isa, "cases": list(cases), "pytest_exit_code": rc}


def test_pass_fail_empty():
    assert build([_run(_case("BIT_EXACT"), _case("BOUNDED"))], kernels=[], profile="quick")["summary"]["verdict"] == "PASSED"
    assert build([_run(_case("BIT_EXACT"), _case("CRASHED"), rc=1)], kernels=[], profile="quick")["summary"]["verdict"] == "FAILED"
    assert build([_run()], kernels=[], profile="quick")["summary"]["verdict"] == "EMPTY"
    # a pytest error outside any case still fails the certificate
    assert build([_run(_case("BIT_EXACT"), rc=2)], kernels=[], profile="quick")["summary"]["verdict"] == "FAILED"


def test_counts_per_kernel_and_isa_and_markdown(tmp_path):
    cert = build([_run(_case("BIT_EXACT"), _case("FAIL"), rc=1), _run(_case("UNAVAILABLE", "k.two"), isa="scalar")],
                 kernels=["k.*"], profile="quick")
    assert cert["schema"] == SCHEMA
    assert cert["summary"]["kernels"]["k.one"]["avx2"] == {"BIT_EXACT": 1, "FAIL": 1}
    md = markdown(cert)
    assert "FAILED" in md and "reproduce: pytest conformance/test_x.py::t --isa avx2" in md and "k.two" in md
    js, _ = write_all(cert, str(tmp_path))
    assert json.load(open(js))["summary"]["counts"] == {"BIT_EXACT": 1, "FAIL": 1, "UNAVAILABLE": 1}


def test_findings_table_counts_and_first_failure(tmp_path):
    from reports.findings import markdown

    res = tmp_path / "results-avx2.json"
    res.write_text(json.dumps({"isa_requested": "avx2", "cases": [
        {**_case("BIT_EXACT"), "convention": "q4_0", "isa_observed": "avx2 (haswell)"},
        {**_case("FAIL"), "convention": "q4_0", "isa_observed": "avx2 (haswell)"},
    ]}))
    md = markdown([str(res)], "test host")
    row = next(line for line in md.splitlines() if line.startswith("| k.one"))
    # BIT_EXACT BOUNDED SUSPECT FAIL CRASHED LOAD_FAILED UNSUPPORTED UNAVAILABLE (oracle/status.py)
    assert "| q4_0 | avx2 | avx2 (haswell) | 1 | 0 | 0 | 1 | 0 | 0 | 0 | 0 |" in row
    assert "first bad element (0, 3)" in row and "pytest conformance/test_x.py::t --isa avx2" in row


def test_known_defects_alone_do_not_fail_the_certificate():
    known = {**_case("CRASHED"), "known_defect": "heap corruption (auto-round-lib 0.16.0)"}
    cert = build([_run(_case("BIT_EXACT"), known)], kernels=[], profile="quick")
    assert cert["summary"]["verdict"] == "KNOWN_DEFECTS"
    assert "known defect: heap corruption" in markdown(cert)
    unknown = build([_run(_case("BIT_EXACT"), known, _case("FAIL"), rc=1)], kernels=[], profile="quick")
    assert unknown["summary"]["verdict"] == "FAILED"


def test_the_certificate_says_how_each_kernel_ran_at_each_level():
    """A capped level is capped by the kernel's knob; a library without one is native at the host's top
    level (or unavailable / emulated below it): each with its reason, in summary.md's table too."""
    cert = build([_run(_case("BIT_EXACT", "torch.int_mm", "scalar"), _case("BIT_EXACT", "onnxruntime.matmulinteger",
                                                                          "scalar"), isa="scalar")],
                 kernels=[], profile="quick")
    torch_mode, ort_mode = cert["modes"]["torch.int_mm"]["scalar"], cert["modes"]["onnxruntime.matmulinteger"]["scalar"]
    assert torch_mode["how"] == "capped" and "ATEN_CPU_CAPABILITY=default" in torch_mode["why"]
    assert ort_mode["how"] in ("native", "unavailable", "emulated") and ort_mode["why"]
    assert "| torch.int_mm | scalar | capped |" in markdown(cert)
