"""``kpireport explain``: every explained number recomputes from the explanation's own figures,
the cells it names hold the values it shows, and the SPEC §5 worked example reads as worked."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from openpyxl import load_workbook

from kpireport import api
from kpireport.core import formula as formula_mod

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def aggregate(values: list[float], how: str) -> float:
    return {"sum": sum, "min": min, "max": max, "last": lambda v: v[-1],
            "average": lambda v: sum(v) / len(v)}[how](values)


def spec_score(direction: str, a: float, t: float, lo, hi, tmax, cap: float, ts: float):
    """SPEC §2.3 written out again (not kpireport's code): (attainment, score)."""
    if direction == "range":
        inside = 1.0 if t <= a <= tmax else 0.0
        return inside, inside
    if direction == "higher":
        att = a / t
        if a < t:
            score = max(0.0, att) if lo is None else 0.0 if a < lo else \
                ts + (1 - ts) * (a - lo) / (t - lo)
        else:
            score = min(att, cap) if hi is None else min(cap, 1 + (cap - 1) * (a - t) / (hi - t))
    else:
        att = t / a if a > 0 else cap
        if a > t:
            score = max(0.0, att) if lo is None else 0.0 if a > lo else \
                ts + (1 - ts) * (lo - a) / (lo - t)
        else:
            score = min(att, cap) if hi is None else min(cap, 1 + (cap - 1) * (t - a) / (t - hi))
    return att, min(max(score, 0.0), cap)


def recompute(doc: dict) -> int:
    """Check every stated result of ``doc`` against its own figures; return how many."""
    checked = 0
    s = doc["settings"]
    for kpi in doc["kpis"]:
        for w in kpi["windows"].values():
            used = [r for r in w["rows"] if r["used"]]
            if w["actual"] is None:
                assert w["score"] is None
                continue
            if kpi["formula"]:
                values = {}
                for comp in w["components"]:
                    picked = [v for v, ok in zip(comp["values"], comp["used"]) if ok]
                    assert close(aggregate(picked, comp["aggregation"]), comp["value"])
                    values[comp["kpi_id"]] = comp["value"]
                    checked += 1
                import numpy as np

                tree = formula_mod.parse(kpi["formula"])
                names = {n.casefold(): n for n in values}
                renamed = formula_mod.rename(tree, {r: names[r.casefold()]
                                                    for r in tree.refs()})
                value, _ = formula_mod.evaluate(renamed, {k: np.array([v])
                                                          for k, v in values.items()})
                assert close(float(value[0]), w["actual"])
                how = "average"
                bounds = ("target", "threshold", "stretch", "target_max")
            else:
                how = kpi["aggregation"]
                assert close(aggregate([r["actual"] for r in used], how), w["actual"])
                bounds = ("target", "threshold", "stretch", "target_max")
            for bound in bounds:
                if w[bound] is not None:
                    assert close(aggregate([r[bound] for r in used], how), w[bound]), bound
                    checked += 1
            att, score = spec_score(kpi["direction"], w["actual"], w["target"], w["threshold"],
                                    w["stretch"], w["target_max"], s["score_cap"],
                                    s["threshold_score"])
            assert close(att, w["attainment"]) and close(score, w["score"]), (kpi, w)
            checked += 3
    for o in (doc["owner_score"] or {}).values():
        counted = [i for i in o["items"] if i["weight"] > 0 and i["score"] is not None]
        total = sum(i["weight"] for i in counted)
        assert close(total, o["weight_total"])
        if counted:
            assert close(sum(i["weight"] * i["score"] for i in counted) / total, o["score"])
        checked += 1
    pay = doc["pay"]
    if pay and pay["band"]:
        band, rounded = pay["band"], round(pay["score"], 6)
        assert rounded == pay["score_rounded"] and band["min_score"] <= rounded
        assert band["next"] is None or rounded < band["next"]["min_score"]
        payout = pay["payout"]
        if "from" in payout:
            (x0, y0), (x1, y1) = payout["from"], payout["to"]
            assert close(y0 + (rounded - x0) / (x1 - x0) * (y1 - y0), payout["value"])
        assert close(float(Fraction(payout["exact"])), payout["value"])
        checked += 2
        if pay["exact"] is not None:
            amount = (Fraction(Decimal(repr(pay["base_salary"])))
                      * Fraction(Decimal(repr(pay["target_bonus_pct"])))
                      * Fraction(pay["share"]) * Fraction(payout["exact"])
                      * Fraction(pay["days_employed"], pay["days_in_period"]))
            assert amount == Fraction(pay["exact"])
            unit = Decimal(1).scaleb(-pay["minor_units"])
            rounded_money = (Decimal(amount.numerator) / Decimal(amount.denominator)).quantize(
                unit, rounding=ROUND_HALF_UP)
            assert str(rounded_money) == pay["bonus"]
            checked += 2
    return checked


def cell_value(book, ref: str):
    sheet, a1 = ref.rsplit("!", 1)
    return book[sheet.strip("'")][a1].value


def check_cells(path: Path, doc: dict) -> int:
    """The cells an explanation names hold the values it shows (typed values, not roll-ups)."""
    book = load_workbook(path, data_only=True)
    checked = 0
    for kpi in doc["kpis"]:
        for cell_name in kpi["scorecard"]["cells"].values():
            assert cell_name and cell_name.startswith("Scorecards!")
        w = kpi["windows"]["ytd"]
        if kpi["formula"] or kpi["rolled_up"] or not w["cells"]["actual"]:
            continue
        sheet, span = w["cells"]["actual"].rsplit("!", 1)
        first, _, last = span.partition(":")
        cells = book[sheet.strip("'")][f"{first}:{last or first}"]
        typed = [c.value for row in cells for c in row]
        shown = [r["actual"] for r in w["rows"]]
        for t, v in zip(typed, shown):
            if t is not None and not isinstance(t, str):
                assert close(float(t), v), (kpi["kpi_id"], typed, shown)
                checked += 1
    return checked


@pytest.mark.parametrize("sample", ["acme", "onlinecrm"])
def test_every_explained_number_recomputes_on_the_samples(sample):
    path = SAMPLES / f"{sample}.xlsx"
    book, issues = api.load(path)
    owners = [p.employee_id for p in book.people] + sorted(book.departments) + ["COMPANY"]
    total = cells = 0
    for owner in owners:
        try:
            doc = api.explain(path, owner)
        except api.KpireportError:
            continue  # a department without a scorecard of its own
        json.dumps(doc, allow_nan=False)  # JSON-able
        total += recompute(doc)
        cells += check_cells(path, doc)
    assert total > 100 and cells > 50


def test_the_worked_example_of_spec_5(make_workbook):
    path = make_workbook()
    doc = api.explain(path, "E1")
    rev, cac = doc["kpis"]
    assert rev["windows"]["ytd"]["cells"] == {
        "actual": "Actuals!C2:D2", "target": "Scorecards!D2", "threshold": "Scorecards!E2",
        "stretch": "Scorecards!F2"}
    assert rev["windows"]["ytd"]["rule"] == "target-to-stretch"
    assert (rev["windows"]["ytd"]["actual"], rev["windows"]["ytd"]["score"]) == (220, 1.25)
    assert cac["windows"]["month"]["rule"] == "no-threshold-below"
    assert close(doc["owner_score"]["ytd"]["score"], 1.15)
    pay = doc["pay"]
    assert pay["band"]["band"] == "Exceeds" and pay["band"]["next"] is None
    assert pay["exact"] == "106200/73" and pay["bonus"] == "1454.79"  # 60000 × 10% × 150% × 59/365
    assert recompute(doc) > 10
    text = subprocess.run([sys.executable, "-m", "kpireport", "explain", str(path), "E1"],
                          capture_output=True, text=True, check=True).stdout
    assert "Actuals!C2:D2" in text and "106200/73" in text and "$1,454.79" in text


def test_renormalised_weights_and_one_kpi(make_workbook):
    path = make_workbook(Actuals=[["owner", "kpi_id", "2026-01", "2026-02"],
                                  ["E1", "REV", 90, 130], ["E2", "REV", 100, 95]])
    doc = api.explain(path, "e1")
    assert doc["owner_score"]["ytd"]["without_data"] == ["CAC"]
    assert close(doc["owner_score"]["ytd"]["weight_total"], 0.6)
    assert recompute(doc) > 5
    one = api.explain(path, "E1", "rev")
    assert [k["kpi_id"] for k in one["kpis"]] == ["REV"] and one["pay"] is None


def test_unknown_owner_or_kpi_is_one_line(make_workbook):
    path = make_workbook()
    for args in (["nobody"], ["E1", "NOPE"]):
        done = subprocess.run([sys.executable, "-m", "kpireport", "explain", str(path), *args],
                              capture_output=True, text=True)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_json_and_vietnamese_text():
    path = SAMPLES / "onlinecrm.xlsx"
    done = subprocess.run([sys.executable, "-m", "kpireport", "explain", str(path), "NV01",
                           "--format", "json"], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["schema"] == "kpireport/explain@1"
    text = subprocess.run([sys.executable, "-m", "kpireport", "explain", str(path), "NV01"],
                          capture_output=True, text=True, check=True).stdout
    assert "Ô đã đọc" in text and "Làm tròn" in text
