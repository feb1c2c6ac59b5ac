"""The sample workbooks: acme (en_US, USD), onlinecrm (vi_VN, VND) and a synthetic company.

All data is generated from fixed seeds, so regenerating a sample gives the same content.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable

from kpireport.core.model import month_label
from kpireport.data_in.template import WorkbookData, year_months

D = dt.date


def _actual_rows(data: WorkbookData, lines: list[tuple[str, str, float, float]],
                 months: list[int], active: Callable[[str, int], bool],
                 missing: set[tuple[str, str, int]], seed: int, unit_of: dict[str, str],
                 season: Callable[[str, int], float] | None = None) -> None:
    """One Actuals row per (owner, kpi): target × owner's form × season × noise."""
    rng = random.Random(seed)
    rows = data.sheets.setdefault("Actuals", [])
    for owner, kpi, target, form in lines:
        row: dict[str, object] = {"owner": owner, "kpi_id": kpi}
        for index, month in enumerate(months):
            if not active(owner, month) or (owner, kpi, month) in missing:
                continue
            trend = 1 + 0.01 * (index - 5)
            factor = form * trend * (season(kpi, month) if season else 1) * rng.gauss(1, 0.06)
            value = target * factor if form >= 0 else target / (-form) * rng.gauss(1, 0.06)
            row[month_label(month)] = _round(value, unit_of[kpi])
        rows.append(row)
        if unit_of[kpi] == "percent":
            data.cell_formats[("Actuals", len(rows) - 1, "*")] = "0.0%"


def _round(value: float, unit: str) -> float:
    if unit == "percent":
        return round(value, 4)
    if unit == "currency":
        return round(value, 2)
    return float(round(value)) if abs(value) >= 20 else round(value, 1)


def _scorecard_formats(data: WorkbookData, unit_of: dict[str, str]) -> None:
    for index, row in enumerate(data.sheets["Scorecards"]):
        unit = unit_of[str(row["kpi_id"])]
        fmt = "0.0%" if unit == "percent" else data.money_format if unit == "currency" \
            else "#,##0"
        for column in ("target", "threshold", "stretch", "target_max", "baseline"):
            data.cell_formats[("Scorecards", index, column)] = fmt


def acme() -> WorkbookData:
    """Acme Analytics: 15 people, fiscal year April 2025 – March 2026, en_US, USD."""
    months = year_months(2025, 4)
    data = WorkbookData(months=months, settings={
        "organization": "Acme Analytics Inc.", "currency": "USD", "locale": "en_US",
        "fiscal_year_start_month": 4, "report_period": None, "missing_actuals": "skip",
        "score_cap": 1.5, "threshold_score": 0.5, "rag_green": 1.0, "rag_amber": 0.9,
        "band_mode": "step", "bonus_basis": "ytd", "report_title": "Performance review",
        "pdf_protection": "employee"})
    people = [
        ("E001", "Dana Whitfield", "Executive", "Chief Executive Officer", None, 310000, 0.30),
        ("E002", "Marcus Chen", "Sales", "VP Sales (player-coach)", "E001", 185000, 0.25),
        ("E003", "Priya Nair", "Sales", "Account Executive", "E002", 92000, 0.20),
        ("E004", "Tom Becker", "Sales", "Account Executive", "E002", 88000, 0.20),
        ("E005", "Lucia Ortiz", "Sales", "Senior Account Executive", "E002", 104000, 0.20),
        ("E006", "Sam Okafor", "Sales", "Account Executive", "E002", 86000, 0.20),
        ("E007", "Hannah Lee", "Marketing", "Head of Marketing", "E001", 168000, 0.20),
        ("E008", "Noah Kim", "Marketing", "Growth Marketer", "E007", 96000, 0.12),
        ("E009", "Ava Rossi", "Marketing", "Content Lead", "E007", 91000, 0.10),
        ("E010", "Liam Brooks", "Marketing", "Performance Marketing Manager", "E007", 99000,
         0.12),
        ("E011", "Grace Mensah", "Customer Success", "Head of Customer Success", "E001",
         152000, 0.18),
        ("E012", "Oliver Grant", "Customer Success", "Customer Success Manager", "E011", 78000,
         0.10),
        ("E013", "Mia Novak", "Customer Success", "Customer Success Manager", "E011", 81000,
         0.10),
        ("E014", "Ethan Park", "Customer Success", "Support Specialist", "E011", 64000, 0.08),
        ("E015", "Zoe Adams", "Marketing", "Marketing Analyst", "E007", 72000, 0.08),
    ]
    dates = {"E004": (D(2021, 6, 1), D(2026, 1, 31)), "E015": (D(2025, 9, 15), None),
             "E001": (D(2016, 3, 1), None)}
    data.sheets["People"] = [
        {"employee_id": e, "name": n, "department": d,
         "email": n.lower().replace(" ", ".") + "@acme.example", "title": t, "manager_id": m,
         "base_salary": s, "target_bonus_pct": b, "start_date": dates.get(e, (D(2022, 2, 1),))[0],
         "end_date": dates.get(e, (None, None))[1]}
        for e, n, d, t, m, s, b in people]
    data.sheets["Goals"] = [
        {"goal_id": "S1", "goal": "Grow recurring revenue 25% year over year",
         "level": "strategic", "perspective": "Financial"},
        {"goal_id": "S2", "goal": "Be the most recommended analytics tool for SMBs",
         "level": "strategic", "perspective": "Customer"},
        {"goal_id": "T1", "goal": "Win more new business", "level": "tactical",
         "parent_goal_id": "S1", "perspective": "Financial"},
        {"goal_id": "T2", "goal": "Generate efficient, high-quality demand",
         "level": "tactical", "parent_goal_id": "S1", "perspective": "Customer"},
        {"goal_id": "T3", "goal": "Keep and delight our customers", "level": "tactical",
         "parent_goal_id": "S2", "perspective": "Customer"},
        {"goal_id": "O1", "goal": "Fast, friendly support", "level": "operational",
         "parent_goal_id": "T3", "perspective": "Internal process"},
        {"goal_id": "O2", "goal": "An engaged, growing team", "level": "operational",
         "parent_goal_id": "S2", "perspective": "Learning & growth"},
    ]
    kpis = [
        ("REV", "New revenue booked", "currency", "higher", "sum", None, "T1"),
        ("DEALS", "Deals closed", "number", "higher", "sum", None, "T1"),
        ("VISITS", "Website visits", "number", "higher", "sum", None, "T2"),
        ("SIGNUPS", "Trial sign-ups", "number", "higher", "sum", None, "T2"),
        ("CONV", "Visit-to-trial conversion", "percent", "higher", None, "SIGNUPS / VISITS",
         "T2"),
        ("SPEND", "Paid marketing spend", "currency", "lower", "sum", None, "T2"),
        ("NEWCUST", "New customers from paid channels", "number", "higher", "sum", None, "T2"),
        ("MKTREV", "Revenue attributed to paid marketing", "currency", "higher", "sum", None,
         "T2"),
        ("CAC", "Customer acquisition cost", "currency", "lower", None, "SPEND / NEWCUST",
         "T2"),
        ("MROI", "Marketing ROI", "percent", "higher", None, "(MKTREV - SPEND) / SPEND", "T2"),
        ("LEADS", "Marketing qualified leads", "number", "higher", "sum", None, "T2"),
        ("RET", "Customer retention rate", "percent", "higher", "average", None, "T3"),
        ("NPS", "Net promoter score", "number", "range", "last", None, "T3"),
        ("FRT", "First response time (hours)", "number", "lower", "average", None, "O1"),
        ("ENGAGE", "Team engagement score", "number", "higher", "average", None, "O2"),
    ]
    unit_of = {k[0]: k[2] for k in kpis}
    data.sheets["KPIs"] = [
        {"kpi_id": k, "kpi": n, "unit": u, "direction": d, "aggregation": a, "formula": f,
         "goal_id": g, "decimals": 1 if u == "percent" or a == "average" else 0,
         "description": f"{n}, measured monthly."} for k, n, u, d, a, f, g in kpis]
    sc = []

    def line(owner, kpi, weight, target, threshold=None, stretch=None, target_max=None,
             baseline=None):
        sc.append({"owner": owner, "kpi_id": kpi, "weight": weight, "target": target,
                   "threshold": threshold, "stretch": stretch, "target_max": target_max,
                   "baseline": baseline})

    line("E001", "NPS", 0.4, 40, target_max=60, baseline=36)
    line("E001", "ENGAGE", 0.3, 78, 70, 85)
    line("E001", "MROI", 0.3, 2.0, 1.5, 2.6)
    line("E002", "REV", 0.5, 30000, 22000, 42000)
    line("E002", "DEALS", 0.2, 5, 4, 7)
    line("E002", "ENGAGE", 0.3, 75, 65, 85)
    for emp in ("E003", "E004", "E005", "E006"):
        line(emp, "REV", 0.6, 50000, 40000, 65000, baseline=44000)
        line(emp, "DEALS", 0.4, 8, 6, 11)
    line("E007", "CAC", 0.4, 400, 480, 330)
    line("E007", "LEADS", 0.0, 300)
    line("E007", "ENGAGE", 0.6, 75, 65, 85)
    line("E008", "VISITS", 0.3, 40000, 32000, 50000)
    line("E008", "SIGNUPS", 0.3, 1200, 950, 1500)
    line("E008", "CONV", 0.4, 0.03, 0.025, 0.036)
    line("E009", "VISITS", 0.5, 30000, 24000, 38000)
    line("E009", "SIGNUPS", 0.5, 600, 480, 760)
    line("E010", "CAC", 0.5, 400, 480, 330)
    line("E010", "MROI", 0.5, 2.0, 1.5, 2.6)
    line("E015", "LEADS", 1.0, 300, 240, 380)
    line("E011", "RET", 0.5, 0.95, 0.92, 0.98)
    line("E011", "NPS", 0.5, 40, target_max=60)
    for emp in ("E012", "E013", "E014"):
        line(emp, "RET", 0.4, 0.95, 0.92, 0.98)
        line(emp, "NPS", 0.3, 40, target_max=60)
        line(emp, "FRT", 0.3, 4, 8, 2)
    line("Sales", "REV", 0.7, 230000, 185000, 290000)
    line("Sales", "DEALS", 0.3, 37, 29, 48)
    line("Marketing", "VISITS", 0.3, 70000, 56000, 88000)
    line("Marketing", "SIGNUPS", 0.3, 1800, 1430, 2260)
    line("Marketing", "CONV", 0.4, 0.026, 0.022, 0.032)
    line("Customer Success", "RET", 0.5, 0.95, 0.92, 0.98)
    line("Customer Success", "FRT", 0.5, 4, 8, 2)
    line("COMPANY", "REV", 0.5, 230000, 185000, 290000)
    line("COMPANY", "NPS", 0.25, 40, target_max=60)
    line("COMPANY", "RET", 0.25, 0.95, 0.92, 0.98)
    data.sheets["Scorecards"] = sc
    _scorecard_formats(data, unit_of)
    season = {4: 0.9, 5: 0.95, 6: 1.05, 7: 0.85, 8: 0.8, 9: 1.0, 10: 1.05, 11: 1.1, 12: 1.3,
              1: 0.8, 2: 0.95, 3: 1.25}
    data.sheets["Targets"] = [
        {"owner": owner, "kpi_id": "REV",
         **{month_label(m): round(230000 * season[m % 12 + 1] / 1.0) for m in months}}
        for owner in ("Sales", "COMPANY")]
    for index in range(len(data.sheets["Targets"])):
        data.cell_formats[("Targets", index, "*")] = data.money_format
    form = {"E001": 1.0, "E002": 1.05, "E003": 1.12, "E004": 0.82, "E005": 1.0, "E006": 0.93,
            "E007": 0.97, "E008": 1.06, "E009": 0.91, "E010": 1.03, "E011": 1.0, "E012": 1.01,
            "E013": 0.985, "E014": 0.97, "E015": 1.1}
    actual_lines = []
    for row in sc:
        owner, kpi = str(row["owner"]), str(row["kpi_id"])
        if owner in ("Sales", "Marketing", "Customer Success") or \
                (owner == "COMPANY" and kpi != "NPS"):
            continue  # rolled up from the people
        if kpi in ("CONV", "CAC", "MROI"):
            continue  # formula KPIs: their parts get actuals below
        f = form.get(owner, 1.0)
        direction = next(k[3] for k in kpis if k[0] == kpi)
        target = float(row["target"])  # type: ignore[arg-type]
        if kpi == "NPS":
            target, f = 45 if owner != "E014" else 35, 1.0
        elif kpi == "RET":
            f = 1 - (1 - f) * 0.08
        elif direction == "lower":
            f = -f
        actual_lines.append((owner, kpi, target, f))
    parts = {"E008": [("VISITS", 40000), ("SIGNUPS", 1200)],
             "E010": [("SPEND", 60000), ("NEWCUST", 150), ("MKTREV", 185000)],
             "E007": [("SPEND", 85000), ("NEWCUST", 205)],
             "E001": [("SPEND", 85000), ("MKTREV", 260000)]}
    for owner, items in parts.items():
        for kpi, target in items:
            if (owner, kpi) not in {(a, b) for a, b, _, _ in actual_lines}:
                actual_lines.append((owner, kpi, target, form[owner]))
    dates_by_owner = {p["employee_id"]: (p["start_date"], p["end_date"])
                      for p in data.sheets["People"]}

    def active(owner: str, month: int) -> bool:
        start, end = dates_by_owner.get(owner, (None, None))
        first = D(month // 12, month % 12 + 1, 1)
        if end is not None and first > end:
            return False
        return not (start is not None and start > D(first.year + (first.month == 12),
                                                    first.month % 12 + 1, 1) - dt.timedelta(1))

    def rev_season(kpi: str, month: int) -> float:
        return season[month % 12 + 1] if kpi in ("REV", "DEALS") else 1.0

    missing = {("E009", "SIGNUPS", months[7]), ("E013", "FRT", months[11]),
               ("E012", "NPS", months[10])}
    _actual_rows(data, actual_lines, months, active, missing, seed=2025, unit_of=unit_of,
                 season=rev_season)
    data.sheets["Bands"] = [
        {"band": "Below expectations", "min_score": 0.0, "bonus_payout": 0.0,
         "salary_increase": 0.0},
        {"band": "Partially meets", "min_score": 0.8, "bonus_payout": 0.5,
         "salary_increase": 0.01},
        {"band": "Meets", "min_score": 0.95, "bonus_payout": 1.0, "salary_increase": 0.03},
        {"band": "Exceeds", "min_score": 1.1, "bonus_payout": 1.3, "salary_increase": 0.05},
        {"band": "Outstanding", "min_score": 1.3, "bonus_payout": 1.6, "salary_increase": 0.07},
    ]
    data.sheets["Recipients"] = [
        {"report": "employee", "scope": "*", "to": "{employee}", "cc": "{manager}"},
        {"report": "department", "scope": "*", "to": "{head}", "cc": "people-ops@acme.example"},
        {"report": "company", "scope": "*", "to": "dana.whitfield@acme.example",
         "cc": "board@acme.example", "bcc": "people-ops@acme.example"},
    ]
    last = month_label(months[-1])
    data.sheets["Comments"] = [
        {"owner": "E003", "period": last, "kpi_id": "REV", "author": "Marcus Chen",
         "comment": "Closed the Northwind renewal and two new logos in March. Outstanding year."},
        {"owner": "E004", "period": last, "author": "Marcus Chen",
         "comment": "Tom left at the end of January; bonus is pro-rated to his last day."},
        {"owner": "E009", "period": last, "kpi_id": "SIGNUPS", "author": "Hannah Lee",
         "comment": "November sign-ups were lost in the CRM migration and are not counted."},
        {"owner": "E015", "period": last, "author": "Hannah Lee",
         "comment": "Zoe joined in September and ramped faster than planned."},
        {"owner": "Marketing", "period": last, "author": "Hannah Lee",
         "comment": "Conversion held above target while paid spend came down 8%."},
        {"owner": "COMPANY", "period": last, "author": "Dana Whitfield",
         "comment": "A strong fourth quarter closed the revenue gap from the summer."},
    ]
    return data


def onlinecrm() -> WorkbookData:
    """OnlineCRM (Vietnam): the source example — 10 billion VND a month in sales."""
    months = year_months(2026, 1)[:10]
    data = WorkbookData(months=year_months(2026, 1), money_format="#,##0", settings={
        "organization": "Công ty Cổ phần OnlineCRM", "currency": "VND", "locale": "vi_VN",
        "fiscal_year_start_month": 1, "report_period": "2026-10", "missing_actuals": "skip",
        "score_cap": 1.5, "threshold_score": 0.5, "rag_green": 1.0, "rag_amber": 0.9,
        "band_mode": "linear", "bonus_basis": "ytd",
        "report_title": "Đánh giá hiệu suất công việc", "pdf_protection": "employee"})
    people = [
        ("NV01", "Nguyễn Văn An", "Ban Giám đốc", "Giám đốc Kinh doanh", None, 720_000_000,
         0.25),
        ("NV02", "Trần Thị Bích Ngọc", "Kinh doanh", "Trưởng nhóm Kinh doanh", "NV01",
         420_000_000, 0.20),
        ("NV03", "Lê Minh Đức", "Kinh doanh", "Chuyên viên Kinh doanh", "NV02", 264_000_000,
         0.15),
        ("NV04", "Phạm Thu Hằng", "Kinh doanh", "Chuyên viên Kinh doanh", "NV02",
         252_000_000, 0.15),
        ("NV05", "Hoàng Quốc Việt", "Marketing", "Trưởng phòng Marketing", "NV01",
         456_000_000, 0.18),
        ("NV06", "Đỗ Thị Mai Anh", "Marketing", "Chuyên viên Mạng xã hội", "NV05",
         216_000_000, 0.12),
        ("NV07", "Vũ Hải Đăng", "Marketing", "Chuyên viên Nội dung", "NV05", 204_000_000,
         0.12),
        ("NV08", "Bùi Phương Linh", "Marketing", "Chuyên viên Quảng cáo", "NV05",
         228_000_000, 0.12),
    ]
    data.sheets["People"] = [
        {"employee_id": e, "name": n, "department": d,
         "email": f"{e.lower()}@onlinecrm.example", "title": t, "manager_id": m,
         "base_salary": s, "target_bonus_pct": b,
         "start_date": D(2026, 4, 1) if e == "NV08" else D(2023, 1, 3), "end_date": None}
        for e, n, d, t, m, s, b in people]
    data.sheets["Goals"] = [
        {"goal_id": "CL1", "goal": "Doanh thu 120 tỷ đồng trong năm 2026", "level": "strategic",
         "perspective": "Tài chính"},
        {"goal_id": "CT1", "goal": "Tăng tương tác trên mạng xã hội để tạo khách hàng tiềm năng",
         "level": "tactical", "parent_goal_id": "CL1", "perspective": "Khách hàng"},
        {"goal_id": "CT2", "goal": "Chuyển đổi khách hàng tiềm năng thành hợp đồng",
         "level": "tactical", "parent_goal_id": "CL1", "perspective": "Quy trình nội bộ"},
    ]
    kpis = [
        ("DOANHTHU", "Doanh thu bán hàng", "currency", "higher", "sum", None, "CL1"),
        ("TUONGTAC", "Lượt tương tác mạng xã hội", "number", "higher", "sum", None, "CT1"),
        ("LEADS", "Khách hàng tiềm năng", "number", "higher", "sum", None, "CT1"),
        ("HOPDONG", "Hợp đồng ký mới", "number", "higher", "sum", None, "CT2"),
        ("TYLECD", "Tỷ lệ chuyển đổi", "percent", "higher", None, "HOPDONG / LEADS", "CT2"),
        ("CHIPHI", "Chi phí quảng cáo", "currency", "lower", "sum", None, "CT1"),
        ("CPL", "Chi phí trên mỗi khách hàng tiềm năng", "currency", "lower", None,
         "CHIPHI / LEADS", "CT1"),
        ("HAILONG", "Mức độ hài lòng của đội ngũ", "number", "higher", "average", None, "CT1"),
    ]
    unit_of = {k[0]: k[2] for k in kpis}
    data.sheets["KPIs"] = [
        {"kpi_id": k, "kpi": n, "unit": u, "direction": d, "aggregation": a, "formula": f,
         "goal_id": g, "decimals": 1 if u == "percent" or a == "average" else 0,
         "description": n}
        for k, n, u, d, a, f, g in kpis]
    sc = [
        ("NV01", "DOANHTHU", 0.7, 10_000_000_000, 8_000_000_000, 12_500_000_000),
        ("NV01", "TYLECD", 0.3, 0.08, 0.065, 0.1),
        ("NV02", "DOANHTHU", 0.6, 5_000_000_000, 4_000_000_000, 6_200_000_000),
        ("NV02", "HOPDONG", 0.4, 40, 32, 50),
        ("NV03", "DOANHTHU", 0.6, 2_500_000_000, 2_000_000_000, 3_100_000_000),
        ("NV03", "HOPDONG", 0.4, 20, 16, 25),
        ("NV04", "DOANHTHU", 0.6, 2_500_000_000, 2_000_000_000, 3_100_000_000),
        ("NV04", "HOPDONG", 0.4, 20, 16, 25),
        ("NV05", "CHIPHI", 0.5, 400_000_000, 440_000_000, 360_000_000),
        ("NV05", "HAILONG", 0.5, 80, 70, 90),
        ("NV06", "TUONGTAC", 0.7, 100_000, 80_000, 130_000),
        ("NV06", "LEADS", 0.3, 400, 320, 500),
        ("NV07", "TUONGTAC", 0.5, 60_000, 48_000, 78_000),
        ("NV07", "LEADS", 0.5, 300, 240, 380),
        ("NV08", "CPL", 0.6, 400_000, 500_000, 320_000),
        ("NV08", "LEADS", 0.4, 300, 240, 380),
        ("Marketing", "TUONGTAC", 0.5, 160_000, 128_000, 208_000),
        ("Marketing", "LEADS", 0.5, 1000, 800, 1250),
        ("Kinh doanh", "DOANHTHU", 0.7, 10_000_000_000, 8_000_000_000, 12_500_000_000),
        ("Kinh doanh", "HOPDONG", 0.3, 80, 64, 100),
        ("COMPANY", "DOANHTHU", 1.0, 10_000_000_000, 8_000_000_000, 12_500_000_000),
    ]
    data.sheets["Scorecards"] = [
        {"owner": o, "kpi_id": k, "weight": w, "target": t, "threshold": th, "stretch": st}
        for o, k, w, t, th, st in sc]
    _scorecard_formats(data, unit_of)
    lines = [
        ("NV02", "DOANHTHU", 5e9, 1.04), ("NV03", "DOANHTHU", 2.5e9, 0.88),
        ("NV04", "DOANHTHU", 2.5e9, 1.13), ("NV02", "HOPDONG", 40, 1.04),
        ("NV03", "HOPDONG", 20, 0.88), ("NV04", "HOPDONG", 20, 1.13),
        ("NV05", "CHIPHI", 400_000_000, -0.97), ("NV05", "HAILONG", 80, 0.96),
        ("NV06", "TUONGTAC", 100_000, 1.08), ("NV06", "LEADS", 400, 1.08),
        ("NV07", "TUONGTAC", 60_000, 0.93), ("NV07", "LEADS", 300, 0.93),
        ("NV08", "CHIPHI", 120_000_000, -1.02), ("NV08", "LEADS", 300, 1.02),
    ]
    start = {"NV08": 2026 * 12 + 3}
    _actual_rows(data, lines, months, lambda o, m: m >= start.get(o, 0), set(), seed=84,
                 unit_of=unit_of)
    rows = data.sheets["Actuals"]
    for row in rows:
        if row["kpi_id"] in ("DOANHTHU", "CHIPHI"):
            for key, value in list(row.items()):
                if key not in ("owner", "kpi_id"):
                    row[key] = float(round(float(value) / 1_000_000) * 1_000_000)  # type: ignore

    def total(owner: str, kpi: str, sources: tuple[str, ...]) -> dict[str, object]:
        summed: dict[str, object] = {"owner": owner, "kpi_id": kpi}
        for m in months:
            key = month_label(m)
            summed[key] = sum(float(r.get(key) or 0) for r in rows  # type: ignore[arg-type]
                              if r["owner"] in sources and r["kpi_id"] == kpi)
        return summed

    # The director is measured on the company's totals, typed in as the company's own row so
    # that the COMPANY line does not add the director to the team a second time.
    team, marketing = ("NV02", "NV03", "NV04"), ("NV06", "NV07", "NV08")
    rows += [total("NV01", "DOANHTHU", team), total("NV01", "HOPDONG", team),
             total("NV01", "LEADS", marketing), total("COMPANY", "DOANHTHU", team)]
    data.sheets["Bands"] = [
        {"band": "Chưa đạt", "min_score": 0.0, "bonus_payout": 0.0, "salary_increase": 0.0},
        {"band": "Đạt một phần", "min_score": 0.8, "bonus_payout": 0.5,
         "salary_increase": 0.02},
        {"band": "Đạt", "min_score": 1.0, "bonus_payout": 1.0, "salary_increase": 0.05},
        {"band": "Vượt", "min_score": 1.2, "bonus_payout": 1.5, "salary_increase": 0.08},
    ]
    data.sheets["Comments"] = [
        {"owner": "NV06", "period": "2026-10", "kpi_id": "TUONGTAC", "author": "Hoàng Quốc Việt",
         "comment": "Chiến dịch livestream tháng 10 vượt kỳ vọng, tương tác tăng mạnh."},
        {"owner": "NV01", "period": "2026-10", "author": "Ban Giám đốc",
         "comment": "Doanh thu quý 3 ổn định; cần đẩy mạnh chuyển đổi trong quý 4."},
    ]
    return data


DEPARTMENTS = ("Sales", "Marketing", "Customer Success", "Operations", "Finance",
               "Engineering", "Product", "People", "Support", "Partnerships")
FIRST = ("Alex", "Sam", "Jordan", "Taylor", "Casey", "Riley", "Morgan", "Jamie", "Avery",
         "Quinn", "Linh", "Minh", "Hana", "Omar", "Ines", "Kofi", "Mei", "Ravi", "Sofia", "Lars")
LAST = ("Smith", "Nguyen", "Garcia", "Kim", "Okafor", "Rossi", "Novak", "Silva", "Tanaka",
        "Müller", "Tran", "Khan", "Brown", "Dubois", "Larsen", "Costa", "Patel", "Ito")


def synthetic(employees: int = 1000, *, year: int = 2025, seed: int = 7) -> WorkbookData:
    """A generated company of ``employees`` people with about 10 KPIs each, for load tests."""
    rng = random.Random(seed)
    months = year_months(year)
    data = WorkbookData(months=months, settings={
        "organization": f"Synthetic Corp ({employees} people)", "currency": "USD",
        "locale": "en_US", "fiscal_year_start_month": 1, "pdf_protection": "employee"})
    kpis = [(f"K{i:02d}", f"Synthetic KPI {i}", "number", "lower" if i % 5 == 4 else "higher",
             ("sum", "average", "last", "max", "min")[i % 5]) for i in range(1, 13)]
    data.sheets["KPIs"] = [
        {"kpi_id": k, "kpi": n, "unit": u, "direction": d, "aggregation": a}
        for k, n, u, d, a in kpis]
    data.sheets["KPIs"].append({"kpi_id": "RATIO", "kpi": "Synthetic ratio", "unit": "percent",
                                "direction": "higher", "formula": "K01 / K02"})
    n_depts = max(1, min(len(DEPARTMENTS) * 10, math.ceil(employees / 25)))
    depts = [DEPARTMENTS[i % len(DEPARTMENTS)] + (f" {i // len(DEPARTMENTS) + 1}"
                                                  if i >= len(DEPARTMENTS) else "")
             for i in range(n_depts)]
    people, sc, actual_lines = [], [], []
    head_of: dict[str, str] = {}
    for i in range(employees):
        emp = f"E{i + 1:05d}"
        dept = depts[i % n_depts]
        manager = head_of.setdefault(dept, emp)
        start = D(year, rng.randint(2, 11), 1) if rng.random() < 0.05 else D(year - 3, 1, 1)
        end = D(year, rng.randint(3, 11), 28) if rng.random() < 0.03 else None
        if end is not None and end < start:
            end = None  # a joiner who leaves before starting is not a person to review
        people.append({"employee_id": emp, "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                       "department": dept, "email": f"{emp.lower()}@synthetic.example",
                       "title": "Manager" if manager == emp else "Specialist",
                       "manager_id": None if manager == emp else manager,
                       "base_salary": float(rng.randrange(40000, 160000, 500)),
                       "target_bonus_pct": rng.choice((0.05, 0.1, 0.15, 0.2)),
                       "start_date": start, "end_date": end})
        chosen = rng.sample(kpis, 9)
        weights = [0.1] * 9 + [0.1]
        form = rng.uniform(0.8, 1.2)
        for (kid, _, _, direction, _), weight in zip(chosen, weights):
            target = float(rng.randrange(100, 10000, 10))
            if direction == "higher":
                threshold, stretch = target * 0.8, target * 1.25
            else:
                threshold, stretch = target * 1.25, target * 0.8
            sc.append({"owner": emp, "kpi_id": kid, "weight": weight, "target": target,
                       "threshold": threshold, "stretch": stretch})
            actual_lines.append((emp, kid, target, form if direction == "higher" else -form))
        sc.append({"owner": emp, "kpi_id": "RATIO", "weight": 0.1, "target": 1.0})
        for kid in ("K01", "K02"):
            if kid not in {c[0] for c in chosen}:
                actual_lines.append((emp, kid, 1000.0, form))
    for dept in depts:
        sc.append({"owner": dept, "kpi_id": "K01", "weight": 0.5, "target": 25000.0})
        sc.append({"owner": dept, "kpi_id": "RATIO", "weight": 0.5, "target": 1.0})
    sc.append({"owner": "COMPANY", "kpi_id": "K01", "weight": 1.0, "target": 1_000_000.0})
    data.sheets["People"] = people
    data.sheets["Scorecards"] = sc
    dates = {p["employee_id"]: (p["start_date"], p["end_date"]) for p in people}
    missing = {(o, k, months[rng.randrange(12)]) for o, k, _, _ in actual_lines
               if rng.random() < 0.05}

    def active(owner: str, month: int) -> bool:
        start, end = dates[owner]
        first = D(month // 12, month % 12 + 1, 1)
        return (end is None or first <= end) and start <= D(first.year, first.month, 28)

    _actual_rows(data, actual_lines, months, active, missing, seed=seed,
                 unit_of={k[0]: "number" for k in kpis})
    data.sheets["Bands"] = [
        {"band": "Below", "min_score": 0.0, "bonus_payout": 0.0, "salary_increase": 0.0},
        {"band": "Partial", "min_score": 0.8, "bonus_payout": 0.5, "salary_increase": 0.01},
        {"band": "Meets", "min_score": 0.95, "bonus_payout": 1.0, "salary_increase": 0.03},
        {"band": "Exceeds", "min_score": 1.1, "bonus_payout": 1.4, "salary_increase": 0.05},
    ]
    return data


SAMPLES = {"acme": acme, "onlinecrm": onlinecrm}
