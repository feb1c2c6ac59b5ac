"""The view models: their read-only containers and their types (kpireport.report.views)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict


class FrozenDict(dict):
    """A dict that cannot change: a view model once built (and every dict inside it).

    Templates, ``json`` and ``pickle`` read it as the dict it is; changing it raises
    TypeError (what a build adds to a view, like its archive copy, is a
    :class:`ViewBuilder` option).
    """

    __slots__ = ()

    def _read_only(self, *args, **kwargs):
        raise TypeError("a view model is read-only: give what it needs to ViewBuilder")

    __setitem__ = __delitem__ = __ior__ = _read_only  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]

    def __reduce__(self):
        return (FrozenDict, (dict(self),))


_NESTED = frozenset([dict, list, tuple])


def freeze(value):
    """``value`` with every dict made a :class:`FrozenDict` and every list a tuple (a
    FrozenDict is frozen already: the per-line parts are built frozen, not walked again)."""
    cls = type(value)
    if cls is dict:
        return FrozenDict({k: freeze(v) if type(v) in _NESTED else v
                           for k, v in value.items()})
    if cls is list or cls is tuple:
        return tuple([freeze(v) if type(v) in _NESTED else v for v in value])
    return value


# ---------------------------------------------------------------------------- the types
# What each report's template receives: every key of every view, checked against the
# ViewBuilder's output by tests/test_render.py. Texts are formatted in the workbook's locale
# (templates do no arithmetic and no formatting); charts are SVG markup.
class Status(TypedDict):
    code: str  # green, amber, red, none
    label: str
    icon: str


class Summary(TypedDict):
    month_score: str
    month_status: Status
    ytd_score: str
    ytd_status: Status


class Window(TypedDict):
    actual: str
    target: str
    attainment: str
    score: str
    status: Status


class KpiRow(TypedDict):
    kpi_id: str
    name: str
    goal: str
    goal_id: str
    strategic: str
    unit: str
    direction: str
    formula: str
    weight: str
    scored: bool
    rolled_up: bool
    month: Window
    ytd: Window
    bullet: str  # SVG
    spark: str  # SVG
    spark_from: str
    spark_to: str


class Comment(TypedDict):
    author: str
    kpi: str
    text: str


class Archive(TypedDict):
    file: str
    results: object
    sha256: str
    version: str


class Workbook(TypedDict):
    file: str
    sha256: str


class Statement(TypedDict):
    """What a report's PDF carries to be verified (kpireport.report.statement)."""

    code: str  # the verification code printed in the footer
    json: str  # the attached statement
    workbook: Workbook
    version: str  # the statement's kpireport version and rules hash, for the PDF's metadata
    rules_sha256: str


class ExplanationBlock(TypedDict):
    """One block of the "How this was computed" page (kpireport.score.explain)."""

    title: str
    lines: Sequence[str]
    head: Sequence[str]
    rows: Sequence[Sequence[str]]
    notes: Sequence[str]


class Common(TypedDict):
    kind: str
    file: str
    title: str
    organization: str
    report_title: str
    period: str
    period_label: str
    ytd_label: str
    lang: str
    locale: str
    currency: str
    index_href: str
    company_href: str
    source_file: str


class Person(TypedDict):
    id: str
    name: str
    title: str
    department: str
    department_href: str
    manager: str


class Pay(TypedDict):
    band: str
    basis: str
    score: str
    base_salary: str
    target_bonus: str
    prorated: str
    bonus_payout: str
    bonus: str
    bonus_size: str
    salary_increase: str
    recommended_salary: str
    salary_size: str
    calculation: str
    payout_explanation: str


class Payment(TypedDict):
    """Payable this month (SPEC §2.8; kpireport.report.pool_view), with bonus_payment."""

    payable: str
    earned: str
    paid: str
    note: str
    clawback: str


class Pool(TypedDict):
    """The bonus pool of the company review (kpireport.report.pool_view)."""

    size: str
    paid: str
    paid_note: str
    earned: str
    earned_note: str
    expected: str
    likely: str
    low: str
    high: str
    months_left: str
    method: str


class OutlookCell(TypedDict):
    text: str
    state: str  # pace / secured / out_of_reach / reached / missed / no_data / na


class OutlookRow(TypedDict):
    name: str
    note: str
    cells: Sequence[OutlookCell]


class OutlookOwner(TypedDict):
    score: str
    band: str
    bonus: str
    short: bool


class WhatItTakes(TypedDict):
    intro: str
    final: bool
    heads: Sequence[str]
    rows: Sequence[OutlookRow]
    owner: Sequence[OutlookOwner]
    short: bool


class EmployeeView(Common, total=False):
    person: Person
    summary: Summary
    pay: Pay
    payment: Payment | None  # None without a payment schedule
    kpis: Sequence[KpiRow]
    no_data: Sequence[str]
    comments: Sequence[Comment]
    explanation: Sequence[ExplanationBlock]
    what_it_takes: WhatItTakes
    statement: Statement
    archive: Archive


class BandChart(TypedDict):
    rows: Sequence[dict]
    svg: str


class TeamRow(TypedDict):
    id: str
    name: str
    title: str
    department: str
    href: str
    month_score: str
    ytd_score: str
    status: Status
    band: str
    bonus: str


class Extreme(TypedDict):
    owner: str
    kpi: str
    score: str
    status: Status


class DepartmentView(Common, total=False):
    name: str
    headcount: int
    summary: Summary
    kpis: Sequence[KpiRow]
    no_data: Sequence[str]
    team: Sequence[TeamRow]
    top: Sequence[Extreme]
    bottom: Sequence[Extreme]
    bands: BandChart
    bonus_total: str
    bonus_total_size: str
    comments: Sequence[Comment]
    statement: Statement
    archive: Archive


class DepartmentRow(TypedDict):
    name: str
    href: str
    headcount: int
    score: str
    status: Status
    team_average: str
    bonus: str


class CompanyView(Common, total=False):
    headcount: int
    summary: Summary
    kpis: Sequence[KpiRow]
    no_data: Sequence[str]
    departments: Sequence[DepartmentRow]
    department_chart: str
    cascade: Sequence[dict]
    bands: BandChart
    bonus_total: str
    bonus_target_total: str
    bonus_total_size: str
    comments: Sequence[Comment]
    pool: Pool
    statement: Statement
    archive: Archive


class IndexView(Common, total=False):
    headcount: int
    company: dict
    departments: Sequence[dict]
    employees: Sequence[dict]
    files: dict
    bonus_total: str
    bonus_total_size: str


VIEW_TYPES = {"employee": EmployeeView, "department": DepartmentView, "company": CompanyView,
              "index": IndexView}
