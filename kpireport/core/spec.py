"""The standard workbook of SPEC §1, described once.

The template writer, the reader and the validator all work from these tables, so a column
added here appears in the template, is read, and is checked.
"""

from __future__ import annotations

import unicodedata
from dataclasses import MISSING, dataclass, fields

from kpireport.core.model import Settings


def normalise(name: object) -> str:
    """Key under which sheet names and headers are compared (trim, NFKC, casefold)."""
    text = unicodedata.normalize("NFKC", str(name)).replace("\u00a0", " ")
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class Column:
    """One column of a standard sheet."""

    name: str
    kind: str  # text, id, enum, number, fraction, money, date, email, int, month
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()
    width: int = 14
    refers_to: tuple[str, str] | None = None  # (sheet, column) for drop-downs


@dataclass(frozen=True)
class Sheet:
    name: str
    required: bool
    columns: tuple[Column, ...]
    help: str = ""
    month_columns: bool = False  # Targets / Actuals: one column per month follows


UNITS = ("number", "currency", "percent")
DIRECTIONS = ("higher", "lower", "range")
AGGREGATIONS = ("sum", "average", "last", "min", "max")
LEVELS = ("strategic", "tactical", "operational")
REPORTS = ("employee", "department", "company")
COMPANY = "COMPANY"


@dataclass(frozen=True)
class Setting:
    """A row of the Settings sheet. Its default is the field default of
    :class:`kpireport.core.model.Settings` (the one home of every default), as it is written in a
    workbook (``yes`` / ``no`` for a switch)."""

    name: str
    kind: str  # text, currency, locale, int, month, percent, choice
    help: str
    choices: tuple[str, ...] = ()

    @property
    def default(self) -> object:

        value = next(f.default for f in fields(Settings) if f.name == self.name)
        if value is MISSING:
            return None
        if isinstance(value, bool):
            return "yes" if value else "no"
        return value


SETTINGS: tuple[Setting, ...] = (
    Setting("organization", "text", "Organisation name shown on every report (required)."),
    Setting("currency", "currency", "ISO 4217 currency code, e.g. USD, VND, EUR."),
    Setting("locale", "locale", "Language and number formats, e.g. en_US or vi_VN."),
    Setting("fiscal_year_start_month", "int", "First month of the fiscal year, 1-12."),
    Setting("report_period", "month",
            "Month reported, YYYY-MM. Blank: the latest month with any actual."),
    Setting("missing_actuals", "choice",
            "skip: months without an actual are left out; zero: they count as 0.",
            ("skip", "zero")),
    Setting("score_cap", "percent", "Highest score a KPI can earn."),
    Setting("threshold_score", "percent", "Score earned exactly at the threshold."),
    Setting("rag_green", "percent", "Green at or above this score."),
    Setting("rag_amber", "percent", "Amber at or above this score, red below."),
    Setting("band_mode", "choice",
            "step: payout of the band reached; linear: interpolated between bands.",
            ("step", "linear")),
    Setting("bonus_basis", "choice",
            "ytd: bonus from the year-to-date score; month: from the month score.",
            ("ytd", "month")),
    Setting("report_title", "text", "Heading of individual reports."),
    Setting("require_approval", "choice",
            "yes: send only mails a run someone approved (kpireport approve) and nothing changed "
            "since; no: send without approval (digests that carry no pay).", ("yes", "no")),
    Setting("pdf_protection", "choice",
            "none: e-mailed PDFs are not encrypted; employee: employee reviews are encrypted "
            "with each recipient's own password; all: every report is.",
            ("none", "employee", "all")),
    Setting("pdf_password_hint", "text",
            "Told in the e-mail instead of the password, e.g. where HR handed it out. Blank: "
            "a standard sentence."),
    Setting("bonus_payment", "choice",
            "When bonuses are paid: none (kpireport only reports them); monthly, quarterly or "
            "annual: payroll shows earned, paid to date and payable now.",
            ("none", "monthly", "quarterly", "annual")),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


SHEETS: tuple[Sheet, ...] = (
    Sheet("Settings", True, (
        Column("setting", "text", True, "Name of the setting (do not change).", width=26),
        Column("value", "text", True, "Your value. Leave blank to use the default.", width=28),
        Column("meaning", "text", False, "What the setting does (ignored by kpireport).", width=70),
    ), help="Organisation-wide settings."),
    Sheet("People", True, (
        Column("employee_id", "id", True, "Unique id of the person, e.g. E001.", width=13),
        Column("name", "text", True, "Full name as printed on the review.", width=24),
        Column("department", "text", True, "Department name; used to group reports.", width=16),
        Column("email", "email", False, "Work email address for the review.", width=28),
        Column("title", "text", False, "Job title.", width=22),
        Column("manager_id", "id", False, "employee_id of the manager; blank for the top.",
               width=13, refers_to=("People", "employee_id")),
        Column("base_salary", "money", False, "Annual base salary (0 or more).", width=14),
        Column("target_bonus_pct", "fraction", False,
               "Target bonus as % of base salary, e.g. 10%.", width=12),
        Column("start_date", "date", False, "First day employed; blank if before the year.",
               width=12),
        Column("end_date", "date", False, "Last day employed; blank if still employed.",
               width=12),
        Column("pdf_password", "text", False, "Optional: the person's own password for "
               "protected PDFs (8 or more characters). Blank: kpireport generates one.",
               width=14),
    ), help="One row per employee."),
    Sheet("Goals", False, (
        Column("goal_id", "id", True, "Unique id of the goal, e.g. G1.", width=10),
        Column("goal", "text", True, "What the goal is.", width=40),
        Column("level", "enum", True, "strategic, tactical or operational.", LEVELS, width=13),
        Column("parent_goal_id", "id", False, "The goal this one serves (a tactical goal names "
               "its strategic goal).", width=14, refers_to=("Goals", "goal_id")),
        Column("perspective", "text", False, "e.g. Financial, Customer, Internal process.",
               width=18),
    ), help="The strategic → tactical goal cascade (optional)."),
    Sheet("KPIs", True, (
        Column("kpi_id", "id", True, "Unique id: a letter, then letters, digits or _ "
               "(max 32).", width=16),
        Column("kpi", "text", True, "Display name of the KPI.", width=30),
        Column("unit", "enum", True, "number, currency or percent.", UNITS, width=10),
        Column("direction", "enum", True, "higher, lower or range (is better).", DIRECTIONS,
               width=10),
        Column("aggregation", "enum", False, "How months add up: sum, average, last, min, "
               "max. Required unless formula is set.", AGGREGATIONS, width=12),
        Column("formula", "text", False, "e.g. SIGNUPS / VISITS: numbers, + - * / ( ) "
               "and kpi_ids.", width=24),
        Column("goal_id", "id", False, "The goal this KPI serves.", width=10,
               refers_to=("Goals", "goal_id")),
        Column("decimals", "int", False, "Decimals shown (0-6).", width=9),
        Column("description", "text", False, "How the KPI is measured.", width=40),
    ), help="The KPI catalogue."),
    Sheet("Scorecards", True, (
        Column("owner", "id", True, "employee_id, department name, or COMPANY.", width=14),
        Column("kpi_id", "id", True, "KPI measured.", width=16, refers_to=("KPIs", "kpi_id")),
        Column("weight", "fraction", True, "Share of the owner's score; per owner the "
               "weights add up to 100%. 0 = tracked, not scored.", width=9),
        Column("target", "number", True, "Monthly target.", width=14),
        Column("threshold", "number", False, "Monthly minimum that still earns a score.",
               width=14),
        Column("stretch", "number", False, "Monthly value that earns the score cap.", width=14),
        Column("target_max", "number", False, "Upper end of the target for range KPIs.",
               width=14),
        Column("baseline", "number", False, "Last year's value, for reference.", width=14),
    ), help="Who is measured on what."),
    Sheet("Targets", False, (
        Column("owner", "id", True, "Scorecard owner.", width=14),
        Column("kpi_id", "id", True, "KPI.", width=16, refers_to=("KPIs", "kpi_id")),
    ), help="Optional monthly phasing of targets.", month_columns=True),
    Sheet("Actuals", True, (
        Column("owner", "id", True, "Scorecard owner.", width=14),
        Column("kpi_id", "id", True, "KPI.", width=16, refers_to=("KPIs", "kpi_id")),
    ), help="Monthly actual values.", month_columns=True),
    Sheet("Bands", True, (
        Column("band", "text", True, "Name of the band, e.g. Meets.", width=16),
        Column("min_score", "fraction", True, "Lowest score in the band; first band 0%.",
               width=11),
        Column("bonus_payout", "fraction", True, "Share of the target bonus paid.", width=13),
        Column("salary_increase", "fraction", False, "Recommended raise, e.g. 3%.", width=15),
    ), help="Salary and bonus bands, sorted by min_score."),
    Sheet("Recipients", False, (
        Column("report", "enum", True, "employee, department or company.", REPORTS, width=12),
        Column("scope", "text", True, "employee_id, department name, or * for all.", width=14),
        Column("to", "text", True, "Addresses or {employee} {manager} {head}; separate "
               "with ; or ,", width=30),
        Column("cc", "text", False, "Copy to.", width=24),
        Column("bcc", "text", False, "Blind copy to.", width=24),
    ), help="Who receives which report (optional)."),
    Sheet("Comments", False, (
        Column("owner", "id", True, "Scorecard owner.", width=14),
        Column("period", "month", True, "Month, YYYY-MM.", width=10),
        Column("kpi_id", "id", False, "KPI commented on; blank for a general comment.",
               width=16, refers_to=("KPIs", "kpi_id")),
        Column("author", "text", False, "Who wrote it.", width=18),
        Column("comment", "text", True, "The comment.", width=60),
    ), help="Comments printed on the reports (optional)."),
    Sheet("Payments", False, (
        Column("employee_id", "id", True, "Who was paid.", width=13,
               refers_to=("People", "employee_id")),
        Column("period", "month", True, "Month paid, YYYY-MM, in the fiscal year.", width=10),
        Column("amount", "money", True, "Bonus paid (0 or more).", width=14),
    ), help="Bonus already paid this fiscal year (optional; when present it is the record "
            "of what was paid)."),
)
SHEETS_BY_NAME = {s.name: s for s in SHEETS}
SHEETS_BY_KEY = {normalise(s.name): s for s in SHEETS}

LONG_ACTUALS_COLUMNS = (
    Column("period", "month", True, "Month, YYYY-MM.", width=10),
    Column("actual", "number", True, "Actual value.", width=14),
)
