"""JUnit XML of a certificate, for CI systems: one testsuite per ISA level (or offline run), one testcase per case.

FAIL is a <failure>, CRASHED an <error>, UNAVAILABLE <skipped> with its reason; BIT_EXACT and
BOUNDED pass, the worst error-to-bound ratio kept as a property. A run that was skipped (ISA
absent on the host) is a suite with one skipped testcase saying why; a pytest process that
failed outside any case is an <error> testcase, so CI never reads it as green.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

__all__ = ["junit_xml"]


def _case(suite: ET.Element, c: dict) -> str:
    shape = "x".join(str(d) for d in c.get("shape", []))
    tc = ET.SubElement(suite, "testcase", classname=c.get("kernel", ""),
                       name=f"{c.get('nodeid', '')}[{c.get('convention', '')} {shape}]", time="0")
    props = ET.SubElement(tc, "properties")
    for key in ("status", "worst_ratio", "isa_observed", "reproduce"):
        if c.get(key) not in (None, ""):
            ET.SubElement(props, "property", name=key, value=str(c[key]))
    status, detail = c["status"], c.get("detail", "")
    if status == "FAIL":
        ET.SubElement(tc, "failure", message=detail[:200], type="FAIL").text = f"{detail}\nreproduce: {c.get('reproduce', '')}"
    elif status == "CRASHED":
        ET.SubElement(tc, "error", message=detail[:200], type="CRASHED").text = f"{detail}\nreproduce: {c.get('reproduce', '')}"
    elif status == "UNAVAILABLE":
        ET.SubElement(tc, "skipped", message=f"UNAVAILABLE: {detail}"[:500])
    return status


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
        for c in run.get("cases", []):
            status = _case(suite, c)
            counts["tests"] += 1
            counts["failures"] += status == "FAIL"
            counts["errors"] += status == "CRASHED"
            counts["skipped"] += status == "UNAVAILABLE"
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
