"""The certificate's reading order: why, counts by category, failures grouped across levels, aligned cases, ratio bins."""
from __future__ import annotations

from reports import digest
from reports.certificate import build, markdown
from reports.html import SHOW_NEW, html_report
from reports.svg import ratio_bins

LEVELS = ("scalar", "avx2", "avx512")


def _case(status, nodeid="conformance/test_x.py::t", kernel="k.one", isa="avx2", detail="ok", known=None, **kw):
    return {"nodeid": nodeid, "kernel": kernel, "isa_requested": isa, "status": status, "detail": detail,
            "known_defect": known, "shape": [1, 64, 8], "convention": "c",
            "reproduce": f"pytest {nodeid} --isa {isa}", **kw}


def _cert(per_level, rc=0):
    """per_level(level) -> the cases of that level; the same draw at every level."""
    runs = [{"isa_requested": lv, "pytest_exit_code": rc, "cases": per_level(lv)} for lv in LEVELS]
    return build(runs, kernels=[], profile="quick")


def _mixed(lv):
    return [_case("BIT_EXACT", isa=lv, worst_ratio=0.0),
            _case("BOUNDED", isa=lv, worst_ratio=0.25, worst_ratio_probable=0.5),
            _case("FAIL", "conformance/test_x.py::u", isa=lv, detail="3 of 8 elements differ\nmore", worst_ratio=7.0,
                  mismatch={"index": [0, 1], "expected": 1.0, "actual": 2.0, "expected_hex": "0x3f800000",
                            "actual_hex": "0x40000000", "bound": 0.01, "error": 1.0, "count": 3}),
            _case("CRASHED", "conformance/test_x.py::v", kernel="k.two", isa=lv, detail="killed by SIGSEGV",
                  known="heap corruption (upstream #12)"),
            _case("UNAVAILABLE", "conformance/test_y.py::w", kernel="k.three", isa=lv, detail="not installed")]


def test_category_counts_cover_every_case_once():
    cert = _cert(_mixed)
    counts = digest.category_counts(cert)
    assert counts["k.one"]["avx2"] == {"pass": 2, "new failure": 1}
    assert counts["k.two"]["scalar"] == {"known defect": 1}
    assert counts["k.three"]["avx512"] == {"unavailable": 1}
    assert sum(sum(c.values()) for per in counts.values() for c in per.values()) == 5 * len(LEVELS)
    assert list(counts["k.one"]) == list(LEVELS)


def test_groups_collapse_levels_and_put_new_before_known():
    groups = digest.failure_groups(_cert(_mixed))
    assert [(g.status, g.known_defect is None) for g in groups] == [("FAIL", True), ("CRASHED", False)]
    new, known = groups
    assert new.levels == list(LEVELS) and len(new.cases) == 3 and new.headline == "3 of 8 elements differ"
    assert new.reproduce == [f"pytest conformance/test_x.py::u --isa {lv}" for lv in LEVELS]
    assert known.known_defect == "heap corruption (upstream #12)"


def test_a_different_first_detail_line_is_another_group():
    def cases(lv):
        return [_case("FAIL", isa=lv, detail="1 of 8 elements differ" if lv == "avx512" else "2 of 8 elements differ")]
    groups = digest.failure_groups(_cert(cases, rc=1))
    assert [(g.headline, g.levels) for g in groups] == [("2 of 8 elements differ", ["scalar", "avx2"]),
                                                        ("1 of 8 elements differ", ["avx512"])]


def test_new_failures_sort_worst_status_first():
    def cases(lv):
        return [_case("FAIL", "t::0", isa=lv, known="registered"), _case("SUSPECT", "t::a", isa=lv),
                _case("FAIL", "t::b", isa=lv), _case("CRASHED", "t::c", isa=lv)]
    # SUSPECT is a warning (oracle/status.py), not a failure: it has no failure group
    assert [g.nodeid for g in digest.failure_groups(_cert(cases, rc=1))] == ["t::c", "t::b", "t::0"]


def test_why_sentences():
    assert _cert(_mixed, rc=1)["summary"]["why"] == (
        "FAILED: 3 new failures in 1 kernel (3 FAIL); 3 known defects in 1 kernel")
    known_only = _cert(lambda lv: [_case("BIT_EXACT", isa=lv), _case("FAIL", isa=lv, known="registered")])
    assert known_only["summary"]["why"] == "KNOWN_DEFECTS: no new failures; 3 known defects in 1 kernel"
    passed = _cert(lambda lv: [_case("BOUNDED", isa=lv), _case("UNAVAILABLE", kernel="k.two", isa=lv)])
    assert passed["summary"]["why"] == "PASSED: 3 cases judged in 1 kernel, every one bit-exact or within its bound"
    empty = _cert(lambda lv: [_case("UNAVAILABLE", isa=lv)])
    assert empty["summary"]["why"] == "EMPTY: nothing was judged (3 cases, all unsupported or unavailable)"
    crashed_pytest = _cert(lambda lv: [_case("BIT_EXACT", isa=lv)], rc=2)
    assert "pytest exited with status 2 at --isa scalar outside any failing case" in crashed_pytest["summary"]["why"]


def test_cases_align_by_test_and_ordinal():
    def cases(lv):  # the third level judged one fewer case of test t
        return [_case("BOUNDED", isa=lv, worst_ratio=0.1 * (i + 1)) for i in range(3 if lv != "avx512" else 2)]
    rows = digest.aligned(_cert(cases))["k.one"]
    assert [(r.nodeid, r.ordinal, sorted(r.cells)) for r in rows] == [
        ("conformance/test_x.py::t", 0, sorted(LEVELS)), ("conformance/test_x.py::t", 1, sorted(LEVELS)),
        ("conformance/test_x.py::t", 2, ["avx2", "scalar"])]
    assert {c["worst_ratio"] for c in rows[1].cells.values()} == {0.2}


def test_showing_n_of_m_in_html_and_markdown():
    def many(lv):
        return [_case("FAIL", f"conformance/test_x.py::t[{i}]", isa=lv, detail=f"case {i}") for i in range(SHOW_NEW + 7)]
    cert = _cert(many, rc=1)
    page = html_report(cert)
    assert f"showing {SHOW_NEW} of {SHOW_NEW + 7} groups" in page
    assert page.count('<div class="fail') == SHOW_NEW
    md = markdown(cert)
    assert "showing 25 of 57" in md and md.count("\n### ") == 25
    assert len(md) < 20_000  # bounded: the failures beyond the cap are counted, not printed


def test_html_says_known_defect_and_orders_sections():
    page = html_report(_cert(_mixed, rc=1))
    order = [page.index(f'id="{a}"') for a in ("why", "counts", "new", "known", "errors", "matrix")]
    assert order == sorted(order)
    assert "known defect:</b> heap corruption (upstream #12)" in page
    assert page.index("conformance/test_x.py::u") < page.index("conformance/test_x.py::v")  # new before known
    assert "CRASHED (known)" in page and "FAIL 7" in page  # matrix cells


def test_ratio_bins_hold_every_value_once():
    values = [0.0, 1e-9, 1e-6, 0.3, 1.0, 1.0000001, 50.0, 1e9, float("inf")]
    bins = ratio_bins(values)
    assert sum(bins) == len(values) and bins[0] == 1
    one = 1 + (0 - -6) * 4  # the first bin past 1.0
    assert sum(bins[1:one]) == 4 and sum(bins[one:]) == 4 and bins[one] == 1  # 1.0 is within the bound


def test_strip_counts_add_up_to_the_judged_cases():
    def cases(lv):
        return [_case("BOUNDED", isa=lv, worst_ratio=0.2, worst_ratio_probable=0.4), _case("BIT_EXACT", isa=lv),
                _case("FAIL", isa=lv, worst_ratio=3.0), _case("CRASHED", isa=lv), _case("UNSUPPORTED", isa=lv)]
    st = digest.ratio_stats(cases("avx2"))
    assert (st.judged, len(st.rigorous), st.without, len(st.probable), st.not_judged) == (4, 2, 2, 1, 1)
    assert st.caption == "4 judged = 2 with a ratio (0 at 0, 1 over 1) + 2 without; 1 probable"
    assert st.caption in html_report(_cert(cases, rc=1))
