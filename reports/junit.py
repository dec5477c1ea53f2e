"""JUnit XML of a certificate, for CI systems: one testsuite per ISA level (or offline run), one testcase per case.

FAIL is a <failure>, CRASHED and LOAD_FAILED an <error>; SUSPECT passes with the warning in its
<system-out>; a failure that is a
registered known defect is <skipped type="xfail"> with its reference (the certificate's verdict
KNOWN_DEFECTS exits 0, so a CI reading this file must not go red on it); UNAVAILABLE and
UNSUPPORTED are <skipped> with their reason; BIT_EXACT and BOUNDED pass, the worst
error-to-bound ratio kept as a property. A testcase's time is its test's time shared among the
cases it judged. A run that was skipped (ISA absent on the host) is a suite with one skipped
testcase saying why; a pytest process that failed outside any case is an <error> testcase, so CI
never reads it as green.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

__all__ = ["junit_xml"]

_FAILURE = ("FAIL",)
_ERROR = ("CRASHED", "LOAD_FAILED")
_SKIPPED = ("UNAVAILABLE", "UNSUPPORTED")


def _case(suite: ET.Element, c: dict, name: str, seconds: float) -> str:
    """One testcase; returns the JUnit outcome it was written as (pass/failure/error/skipped)."""
    tc = ET.SubElement(suite, "testcase", classname=c.get("kernel", ""), name=name, time=f"{seconds:.4f}")
    props = ET.SubElement(tc, "properties")
    for key in ("status", "worst_ratio", "isa_observed", "reproduce", "known_defect"):
        if c.get(key) not in (None, ""):
            ET.SubElement(props, "property", name=key, value=str(c[key]))
    status, detail = c["status"], c.get("detail", "")
    text = f"{detail}\nreproduce: {c.get('reproduce', '')}"
    if status in _FAILURE + _ERROR and c.get("known_defect"):
        ET.SubElement(tc, "skipped", type="xfail", message=f"known defect ({status}): {c['known_defect']}"[:500]).text = text
        return "skipped"
    if status in _FAILURE:
        ET.SubElement(tc, "failure", message=detail[:200], type=status).text = text
        return "failure"
    if status in _ERROR:
        ET.SubElement(tc, "error", message=detail[:200], type=status).text = text
        return "error"
    if status in _SKIPPED:
        ET.SubElement(tc, "skipped", message=f"{status}: {detail}"[:500])
        return "skipped"
    if status == "SUSPECT":
        ET.SubElement(tc, "system-out").text = f"SUSPECT (a warning): {text}"
    return "pass"


def _names(cases: list[dict]) -> list[str]:
    """A unique name per case: the test id with its convention and shape, numbered where a test judged
    several cases of the same convention and shape."""
    base = [f"{c.get('nodeid', '')}[{c.get('convention', '')} {'x'.join(str(d) for d in c.get('shape', []))}]"
            for c in cases]
    total, seen = Counter(base), Counter()
    out = []
    for b in base:
        seen[b] += 1
        out.append(b if total[b] == 1 else f"{b} #{seen[b]}")
    return out


def junit_xml(cert: dict) -> str:
    root = ET.Element("testsuites", name=f"qoracle certificate ({cert['summary']['verdict']})")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for run in cert["runs"]:
        suite = ET.SubElement(root, "testsuite", name=f"qoracle --isa {run['isa_requested']}")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if run.get("skipped"):
            tc = ET.SubElement(suite, "testcase", classname="qoracle", name=f"isa {run['isa_requested']}", time="0")
            ET.SubElement(tc, "skipped", message=str(run["skipped"]))
            counts["tests"] += 1
            counts["skipped"] += 1
        cases = run.get("cases", [])
        per_test = Counter(c.get("nodeid", "") for c in cases)
        for c, name in zip(cases, _names(cases)):
            outcome = _case(suite, c, name, float(c.get("test_seconds") or 0) / per_test[c.get("nodeid", "")])
            counts["tests"] += 1
            counts["failures"] += outcome == "failure"
            counts["errors"] += outcome == "error"
            counts["skipped"] += outcome == "skipped"
        if run.get("pytest_exit_code") not in (0, 5, None):
            tc = ET.SubElement(suite, "testcase", classname="qoracle", name=f"pytest at --isa {run['isa_requested']}", time="0")
            ET.SubElement(tc, "error", message=f"pytest exited with status {run['pytest_exit_code']}", type="PYTEST")
            counts["tests"] += 1
            counts["errors"] += 1
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
