"""The defect zoo's registry, classification and report, on fake results (no network, no installs)."""
from __future__ import annotations

import re

import pytest

from reports.zoo import VersionOutcome, classify, entry_verdict, env_name, markdown, select, summary
from reports.zoo_entries import KINDS, ZOO, Entry

_VERSION = re.compile(r"^\d+(\.\d+)+(\+cpu)?$")


def _results(tests: dict, cases: list[dict], failures: list[dict] | None = None) -> dict:
    return {"tests": tests, "cases": cases, "failures": failures or [], "outcomes": {}}


def _entry(**kw) -> Entry:
    base = dict(id="x-1", link="https://github.com/o/r/issues/1", kind="layout", trigger="t", package="p",
                affected="1.0", fixed="1.1", selection=("conformance/test_x.py",))
    return Entry(**{**base, **kw})


# ----------------------------------------------------------------------------------- registry

def test_registry_shape():
    ids = [e.id for e in ZOO]
    assert len(ids) == len(set(ids)) >= 9
    for e in ZOO:
        assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+/(issues|pull)/\d+", e.link), e.link
        assert e.kind in KINDS, e.kind
        assert _VERSION.match(e.affected), e.affected
        assert e.fixed is None or _VERSION.match(e.fixed), e.fixed
        assert e.expected in ("detected", "known")
        assert (e.fixed is None) == (e.expected == "known"), e.id  # by design means no fixed release
        assert e.selection and e.selection[0].startswith("conformance/test_"), e.selection
        assert e.package != "torch" or e.affected.endswith("+cpu"), "a torch pin must name the CPU build"
        assert e.expected != "known" or e.known_pattern, "a by-design entry says how the suite reports it"


def test_registry_covers_the_required_defects_and_kinds():
    links = " ".join(e.link for e in ZOO)
    for ref in ("onnxruntime/issues/19450", "onnxruntime/issues/28551", "pytorch/issues/136746",
                "llama.cpp/issues/7311", "pytorch/issues/44939", "onnxruntime/issues/16105"):
        assert ref in links, ref
    assert {"zero point", "layout", "shape tail", "rounding", "ISA path", "saturation"} <= {e.kind for e in ZOO}


def test_registry_selections_name_existing_tests():
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for e in ZOO:
        path = e.selection[0].split("::")[0]
        assert os.path.exists(os.path.join(root, path)), path
        for node in (s for s in e.selection if "::" in s):
            func = node.split("::")[1].split("[")[0]
            with open(os.path.join(root, path), encoding="utf-8") as f:
                assert f"def {func}(" in f.read(), node


def test_select_globs_and_refuses_unknown():
    assert [e.id for e in select(["ort-28551-*"])] == ["ort-28551-matmulnbits-block-512"]
    assert len(select([])) == len(ZOO)
    with pytest.raises(ValueError, match="matches no zoo entry"):
        select(["nothing-like-this*"])


def test_env_name_one_per_package_and_version():
    assert env_name("onnxruntime", "1.26.0", ("onnxruntime==1.26.0",)) == "onnxruntime-1.26.0"
    a = env_name("onnxruntime", "1.17.0", ("onnxruntime==1.17.0", "numpy<2"))
    b = env_name("onnxruntime", "1.17.0", ("onnxruntime==1.17.0", "numpy<3"))
    assert a.startswith("onnxruntime-1.17.0-") and a != b
    assert "+" not in env_name("torch", "2.13.0+cpu", ("torch==2.13.0+cpu",))


# ----------------------------------------------------------------------------- classification

_FAIL = {"message": "Failed: FAIL: MatMulNBits int4 asym zp block 512 [ort.matmulnbits.int4.asym]\n  24 of 24 elements outside"}
_JUDGED = {"status": "PASSED", "nodeid": "n"}
_SKIP = {"status": "UNAVAILABLE", "detail": "onnxruntime not installed"}


def test_affected_failure_is_detected_with_its_first_line():
    r = _results({"n": "failed"}, [{"status": "FAIL"}], [_FAIL])
    status, printed, detail = classify("affected", r, 1)
    assert status == "DETECTED"
    assert printed.startswith("FAIL: MatMulNBits int4 asym zp block 512")
    assert detail.startswith("24 of 24")


def test_fixed_failure_is_a_false_alarm_and_a_pass_passes():
    assert classify("fixed", _results({"n": "failed"}, [{"status": "FAIL"}], [_FAIL]), 1)[0] == "FALSE ALARM"
    assert classify("fixed", _results({"n": "passed"}, [_JUDGED]), 0)[0] == "PASSED"


def test_affected_pass_is_missed():
    assert classify("affected", _results({"n": "passed"}, [_JUDGED]), 0)[0] == "MISSED"


def test_nothing_judged_says_why():
    status, printed, _ = classify("affected", _results({"n": "skipped"}, [_SKIP]), 0)
    assert (status, printed) == ("NOT JUDGED", "onnxruntime not installed")
    assert classify("fixed", _results({}, []), 5)[0] == "NOT JUDGED"  # not a PASS: nothing ran


def test_known_defects_strict_xfail_or_modelled_case():
    assert classify("by design", _results({"n": "xfailed"}, [{"status": "FAIL", "known_defect": "x"}]), 0)[0] == \
        "KNOWN DEFECT"
    modelled = {"status": "PASSED", "int16_pairs": True}
    r = _results({"n": "passed"}, [modelled])
    assert classify("by design", r, 0, known_pattern=r'"int16_pairs": true')[0] == "KNOWN DEFECT"
    assert classify("by design", r, 0, known_pattern=r'"model": "u8s8_int16_pairs"')[0] == "MISSED"


def test_no_results_file_is_an_error():
    assert classify("affected", None, 4, "ERROR: usage")[0] == "ERROR"


def _o(role, status, printed=""):
    return VersionOutcome(role, "1", status, printed)


def test_entry_verdict_follows_the_defects4j_rule():
    e = _entry()
    assert entry_verdict(e, [_o("affected", "DETECTED"), _o("fixed", "PASSED")]) == "DETECTED"
    assert entry_verdict(e, [_o("affected", "DETECTED"), _o("fixed", "FALSE ALARM")]) == "INCONCLUSIVE"
    assert entry_verdict(e, [_o("affected", "DETECTED"), _o("fixed", "NOT RUN")]) == "DETECTED (fixed not checked)"
    assert entry_verdict(e, [_o("affected", "MISSED"), _o("fixed", "PASSED")]) == "MISSED"
    assert entry_verdict(e, [_o("affected", "NOT INSTALLABLE"), _o("fixed", "PASSED")]) == "NOT INSTALLABLE"
    assert entry_verdict(e, [_o("affected", "NOT JUDGED"), _o("fixed", "NOT JUDGED")]) == "NOT JUDGED"
    k = _entry(expected="known", fixed=None, known_pattern="x")
    assert entry_verdict(k, [_o("by design", "KNOWN DEFECT")]) == "KNOWN (by design)"
    assert entry_verdict(k, [_o("by design", "DETECTED")]) == "SURPRISE"


def _row(id_, verdict, expected="detected", outcomes=()):
    return {"id": id_, "link": f"https://github.com/o/r/issues/{len(id_)}", "kind": "layout", "trigger": "t | u",
            "expected": expected, "fixed": "1.1", "verdict": verdict, "gap": "a case family", "notes": "",
            "fixed_not_run": "", "outcomes": list(outcomes)}


def test_summary_rate_counts_only_judged_fixed_defects():
    rows = [_row("a", "DETECTED"), _row("b", "MISSED"), _row("c", "NOT INSTALLABLE"), _row("d", "INCONCLUSIVE"),
            _row("e", "KNOWN (by design)", "known")]
    s = summary(rows)
    assert (s["judged"], s["detected"], s["detection_rate"]) == (3, 1, 0.333)
    assert (s["by_design"], s["by_design_reported_known"]) == (1, 1)


def test_markdown_table_links_versions_printed_line_and_gaps():
    aff = {"role": "affected", "version": "1.26.0", "status": "DETECTED", "printed": "FAIL: block 512 | zeros",
           "detail": "24 of 24", "counts": {}, "install_s": 1, "run_s": 1, "env": "e", "env_mb": 1}
    fix = {**aff, "role": "fixed", "version": "1.27.0", "status": "PASSED", "printed": "", "detail": ""}
    miss = {**aff, "version": "1.24.2", "status": "MISSED", "printed": "", "detail": ""}
    rows = [_row("ort-a", "DETECTED", outcomes=[aff, fix]), _row("ort-b", "MISSED", outcomes=[miss])]
    text = markdown({"host": "h", "wall_s": 60, "disk_mb": 10, "rows": rows, "summary": summary(rows)})
    line = next(ln for ln in text.splitlines() if ln.startswith("| [ort-a]"))
    assert "(https://github.com/o/r/issues/5)" in line
    assert "1.26.0: **DETECTED**" in line and "1.27.0: **PASSED**" in line
    assert "FAIL: block 512 \\| zeros 24 of 24" in line  # a pipe in the message cannot break the table
    assert "## Gaps" in text and "**ort-b** (MISSED)" in text and "Closing it: a case family." in text
    assert "1 of 2 fixed defects" in text
