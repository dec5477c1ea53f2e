"""The findings page: what each ISA level found, per kernel and convention, from results files.

    qoracle findings --host "Intel Xeon (AMX)" out/results-*.json > docs/findings.md

One row per (kernel, convention, ISA requested): the ISA observed, the verdict counts, and for
a FAIL or CRASHED the first case's message line and its reproduce command. A case covered by a
known-defect entry shows with its failing status here too, marked "(known defect)"; the registry
(conformance/known_defects.py) says why.
"""
from __future__ import annotations

import json
from collections import defaultdict

from oracle.status import FAILING, Status

STATUSES = tuple(s.value for s in Status)


def _rows(paths: list[str]) -> list[dict]:
    groups: dict[tuple[str, str, str], dict] = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        for c in data.get("cases", []):
            key = (c["kernel"], c.get("convention", ""), c.get("isa_requested", data.get("isa_requested", "")))
            g = groups.setdefault(key, {"counts": defaultdict(int), "observed": set(), "first_bad": None})
            g["counts"][c["status"]] += 1
            if c.get("isa_observed"):
                g["observed"].add(c["isa_observed"])
            if c["status"] in FAILING and g["first_bad"] is None:
                g["first_bad"] = c
    return [{"kernel": k, "convention": conv, "isa": isa, **g} for (k, conv, isa), g in sorted(groups.items())]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(paths: list[str], host: str) -> str:
    lines = [f"## {host}", "",
             "| kernel | convention | --isa | observed | " + " | ".join(STATUSES) + " | first failure |",
             "|---|---|---|---|" + "---|" * len(STATUSES) + "---|"]
    for r in _rows(paths):
        bad = r["first_bad"]
        note = ""
        if bad is not None:
            known = " (known defect)" if bad.get("known_defect") else ""
            first = ((bad.get("detail") or "").splitlines() or [""])[0][:160]
            note = _cell(f"{bad['status']}{known}: {first}; `{bad.get('reproduce', '')}`")
        observed = _cell("; ".join(sorted(r["observed"]))[:120])
        lines.append(f"| {r['kernel']} | {_cell(r['convention'])} | {r['isa']} | {observed} | "
                     + " | ".join(str(r["counts"].get(s, 0)) for s in STATUSES) + f" | {note} |")
    return "\n".join(lines) + "\n"
