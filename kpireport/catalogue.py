"""Every issue code kpireport reports, in one table (frictionless style).

Each entry has a stable kebab-case ``code``, a ``severity``, a short ``title``, the ``fix`` (what
to do, as the annotated workbook's notes say it) and one or more message templates, filled from
named fields by :func:`kpireport.issues.issue`. A code with several templates names them
(``form``): ``duplicate-id`` says "employee_id … is used twice" or "band … is listed twice".

A template never names the issue's own place: the sheet and cell are the issue's fields, and
the message shown begins with them (``People!E3: manager E99 is not …``) as ``where`` says:
:data:`CELL` (``Sheet!A1``), :data:`SHEET` (``Sheet``), :data:`NOWHERE` (nothing), or a template
of its own over the fields (``merged-cells`` names the whole range).

Messages are English; they are not translated (the catalogs translate the reports and
e-mails). The README's table of codes is tested against this one (tests/test_catalogue.py).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

SEVERITIES = ("error", "warning", "info")
STAGES = ("read", "check", "build")  # when it is found: reading the file, check, build
CELL, SHEET, NOWHERE = "{sheet}!{cell}", "{sheet}", ""
PLACE_FIELDS = frozenset({"sheet", "cell"})


def _names(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


@dataclass(frozen=True)
class Form:
    """One message template and where its message says the issue is."""

    text: str
    where: str = CELL

    @property
    def fields(self) -> frozenset[str]:
        """The named fields the message needs (not the issue's sheet and cell)."""
        return (_names(self.text) | _names(self.where)) - PLACE_FIELDS


@dataclass(frozen=True)
class Entry:
    code: str
    severity: str
    title: str
    fix: str
    forms: Mapping[str, Form] = field(default_factory=dict)
    stage: str = "check"


def at_sheet(text: str) -> Form:
    """A message that begins with the sheet only (``Settings: organization is required``)."""
    return Form(text, SHEET)


def unplaced(text: str) -> Form:
    """A message that begins with no place (it names a sheet itself, or none)."""
    return Form(text, NOWHERE)


def _entry(code: str, severity: str, title: str, fix: str, message: str | Form | None = None,
           *, stage: str = "check", **forms: str | Form) -> Entry:
    if message is not None:
        forms = {"": message, **forms}
    made = {name.replace("_", "-"): f if isinstance(f, Form) else Form(f)
            for name, f in forms.items()}
    return Entry(code, severity, title, fix, MappingProxyType(made), stage)


ERROR, WARNING, INFO = SEVERITIES
_WHOLE = " looks like a whole percent; type {value:.6g}% (or {fraction:.6g})"
_NOT_IN = "{what} {id} is not in the {listed_in} sheet{hint}"

ENTRIES: tuple[Entry, ...] = (
    # ------------------------------------------------------------------ the file and its sheets
    _entry("unreadable-file", ERROR, "Unreadable file",
           "Save the file as Excel Workbook (.xlsx).", unplaced("{error}"), stage="read"),
    _entry("missing-sheet", ERROR, "Missing sheet",
           "Add the sheet (kpireport init writes a template with every sheet).",
           unplaced("the required sheet {name!r} is missing (sheets found: {found})"),
           near=unplaced("the required sheet {name!r} is missing (sheets found: {found})"
                         "{hint} Rename it to {name}")),
    _entry("duplicate-sheet", ERROR, "Duplicate sheet",
           "Keep one of the two sheets; delete or rename the other.",
           unplaced("sheets {first!r} and {second!r} both stand for {standard}; keep one")),
    _entry("unknown-sheet", INFO, "Unknown sheet", "Nothing to do: the sheet is ignored.",
           unplaced("sheet {name!r} is not a kpireport sheet; ignored")),
    _entry("hidden-sheet", WARNING, "Hidden sheet",
           "Unhide the sheet, or leave it: it is read anyway.",
           unplaced("sheet {name!r} is hidden; it is read all the same")),
    _entry("merged-cells", WARNING, "Merged cells", "Unmerge the cells.",
           Form("merged cells; only the top-left cell keeps a value, unmerge them",
                "{sheet}!{range}")),
    _entry("missing-column", ERROR, "Missing column",
           "Add the column to the header row (see the template).",
           empty_sheet=unplaced("sheet {name!r} is empty; it needs the columns {columns}"),
           column=at_sheet("the required column {column!r} is missing from the header row "
                           "{row}"),
           near=at_sheet("the required column {column!r} is missing from the header row "
                         "{row}{hint} Rename that header to {column}"),
           no_months=at_sheet("no month columns; add headers such as 2026-01 (or the long "
                              "layout: owner, kpi_id, period, actual)")),
    _entry("duplicate-column", ERROR, "Duplicate column",
           "Delete or rename one of the two columns.",
           month="month {month} appears twice (also {first})",
           column="column {column!r} appears twice (also {first})"),
    _entry("similar-column", WARNING, "Column name nearly right",
           "Rename the header to the column it was meant to be, or it stays ignored.",
           "column {header!r} is ignored; did you mean {column}? Rename the header to "
           "{column} to use it"),
    _entry("unknown-column", INFO, "Unknown column", "Nothing to do: the column is ignored.",
           "column {header!r} is not a kpireport column; ignored"),
    _entry("excel-error", ERROR, "Excel error in a cell", "Fix the formula so that it shows a "
           "value.", "the cell shows the Excel error {error}; fix the formula or type the value"),
    _entry("formula-without-value", ERROR, "Formula without a saved value",
           "Open and save the file in Excel or LibreOffice so the formula gets its value.",
           "the formula has no saved result (the file was written by a program that does not "
           "calculate); open and save it in Excel or LibreOffice"),
    _entry("missing-glyphs", WARNING, "Characters the fonts cannot draw",
           "Install a font with these characters on the machine that builds, or change the "
           "text.",
           "the fonts kpireport ships have no glyph for {chars}; the PDF shows them with a "
           "font of this machine if it has one, else as empty boxes"),
    # ------------------------------------------------------------------ cells
    _entry("missing-value", ERROR, "Missing value", "Type the value; this cell is required.",
           required="{column} is required",
           aggregation="aggregation is required unless the KPI has a formula",
           no_bands=at_sheet("at least one band is required")),
    _entry("control-character", ERROR, "Control character",
           "Retype the value (it contains an invisible character).",
           line_break="the text contains a line break or tab; retype the value",
           control="the text contains an invisible control character; retype the value"),
    _entry("not-a-number", ERROR, "Not a number",
           "Type a number (no units or words in the cell).", "{value!r} is not a number"),
    _entry("not-finite", ERROR, "Not a finite number", "Type a finite number.",
           number="{value} is not a finite number", text="{value!r} is not a finite number"),
    _entry("number-as-text", WARNING, "Number stored as text",
           "Retype the number so that it is stored as a number.",
           "the number {value!r} is stored as text; it was read as a number"),
    _entry("out-of-range", ERROR, "Out of range", "Type a value inside the allowed range.",
           magnitude="{value:g} is outside the range kpireport computes with (0, or {low:g} "
                     "to {high:g} in magnitude, either sign)",
           integer="{value:.6g} must be a whole number from {low} to {high}"),
    _entry("negative-value", ERROR, "Negative value", "Type a value of zero or more.",
           "{what} cannot be negative"),
    _entry("percent-as-whole-number", ERROR, "Percentage typed as a whole number",
           "Type the percentage with a % sign (25%), or as 0.25.",
           cell="{what} {value:.6g} looks like a whole percent; write {value:.6g}% or "
                "{fraction:.6g}",
           target="target {value:.6g} of {kpi}, a percent KPI whose actuals are like "
                  "{like:.6g}%," + _WHOLE,
           month="{value:.6g} for {month} of {kpi}, a percent KPI whose target is "
                 "{target:.6g}%," + _WHOLE,
           bound="{column} {value:.6g} of {kpi}, a percent KPI whose target is "
                 "{target:.6g}%," + _WHOLE,
           target_bound="target {value:.6g} of {kpi}, a percent KPI whose {bounds} is like "
                        "{like:.6g}%," + _WHOLE,
           target_bounds="target {value:.6g} of {kpi}, a percent KPI whose {bounds} are like "
                         "{like:.6g}%," + _WHOLE),
    _entry("not-a-date", ERROR, "Not a date",
           "Type a date (e.g. 2026-01-31) or format the cell as a date.",
           "{value!r} is not a date; type a date such as 2026-03-31"),
    _entry("bad-period", ERROR, "Not a month", "Type the month as YYYY-MM, e.g. 2026-01.",
           header="the header {header!r} looks like a month but names no single month; type "
                  "it as YYYY-MM, e.g. 2026-03 (or 03/2026, Mar 2026)",
           cell="{value!r} is not a month; write YYYY-MM, e.g. 2026-10"),
    _entry("bad-choice", ERROR, "Not one of the allowed words",
           "Choose one of the allowed words (the drop-down list shows them).",
           "{value!r} is not one of {choices}{hint}"),
    _entry("bad-email", ERROR, "Not an e-mail address",
           "Type exactly one plain e-mail address, e.g. name@example.com.",
           address="{value!r} is not a single valid e-mail address{hint}",
           recipient="{value!r} is not a single e-mail address or {{employee}}, {{manager}}, "
                     "{{head}}{hint}"),
    # ------------------------------------------------------------------ Settings
    _entry("unknown-setting", WARNING, "Unknown setting",
           "Delete the row or correct the setting's name.",
           "{name!r} is not a kpireport setting; ignored{hint}"),
    _entry("duplicate-setting", ERROR, "Setting set twice", "Keep one row for the setting.",
           "{setting} is set twice (also {first})"),
    _entry("missing-setting", ERROR, "Missing setting", "Add the setting with a value.",
           at_sheet("organization is required (add a row: organization | your "
                    "organisation's name)")),
    _entry("bad-setting", ERROR, "Setting out of range",
           "Change the value (see the Settings notes for what is allowed).",
           score_cap=at_sheet("score_cap must be at least 100%"),
           rag_order=at_sheet("rag_amber must not be above rag_green")),
    _entry("bad-currency", ERROR, "Unknown currency", "Type an ISO 4217 code, e.g. USD, EUR, "
           "VND.", "{value!r} is not an ISO 4217 currency code (e.g. USD, EUR, VND)"),
    _entry("bad-locale", ERROR, "Unknown locale", "Type a locale such as en_US or vi_VN.",
           "{value!r} is not a known locale (e.g. en_US, vi_VN)"),
    _entry("pdf-protection-off", INFO, "PDFs not encrypted",
           "Set pdf_protection to employee or all to encrypt e-mailed PDFs.",
           at_sheet("pdf_protection is none, so e-mailed PDFs are not encrypted (set employee "
                    "or all to protect them)")),
    _entry("no-report-period", ERROR, "No report period",
           "Type report_period in Settings, or some actuals.",
           at_sheet("report_period is blank and there are no actuals to take the latest month "
                    "from")),
    _entry("report-period", INFO, "Report period chosen", "Nothing to do.",
           unplaced("report period {month} (the latest month with an actual)")),
    _entry("no-actuals-in-period", ERROR, "No actuals in the report period",
           "Type the month's actuals, or set report_period to a month that has some.",
           "report_period {reason}"),
    _entry("actual-after-period", WARNING, "Actuals after the report period",
           "Nothing to do, or move report_period forward.",
           at_sheet("there are actuals after the report period {period} ({later}); they are "
                    "not used")),
    # ------------------------------------------------------------------ People and Goals
    _entry("duplicate-id", ERROR, "Duplicate id", "Give each row its own id (ids ignore case).",
           employee="employee_id {id!r} is used twice (also {first}; ids ignore case)",
           goal="goal_id {id!r} is used twice",
           kpi="kpi_id {id!r} is used twice (ids ignore case)",
           band="band {id!r} is listed twice"),
    _entry("unknown-reference", ERROR, "Unknown reference",
           "Use an id that exists, or add the missing row.", _NOT_IN,
           formula="the formula uses {ref}, which is not a kpi_id in the KPIs sheet{hint}"),
    _entry("manager-cycle", ERROR, "Managers in a loop",
           "Break the loop: someone in it must report to a person outside it.",
           own="{id} is its own manager", loop="managers form a loop ({path})"),
    _entry("goal-cycle", ERROR, "Goals in a loop",
           "Break the loop: one goal in it must serve a goal outside it.",
           own="{id} is its own parent goal", loop="goals form a loop ({path})"),
    _entry("bad-date-range", ERROR, "End before start",
           "Make end_date fall on or after start_date.",
           "end_date {end} is before start_date {start}"),
    _entry("bad-pdf-password", ERROR, "Unusable PDF password",
           "Type a password of at least 8 characters without control characters.",
           "the pdf_password {problem} (the value is not shown)"),
    # ------------------------------------------------------------------ KPIs
    _entry("bad-kpi-id", ERROR, "Unusable kpi_id",
           "Use a letter followed by letters, digits or _ (at most 32).",
           "kpi_id {id!r} must start with a letter and use only letters, digits and _ (at "
           "most 32)"),
    _entry("bad-formula", ERROR, "Formula does not parse",
           "Write the formula with numbers, + - * / ( ) and kpi_ids only.", "{error}"),
    _entry("formula-cycle", ERROR, "Formula refers to itself",
           "Remove the formula's reference to itself.",
           "the formula of {kpi} refers to itself, directly or through another formula"),
    _entry("nested-formula", ERROR, "Formula uses a formula KPI",
           "Refer to KPIs without a formula only.",
           "{component} is itself a formula KPI; use the KPIs it is made of"),
    # ------------------------------------------------------------------ Scorecards
    _entry("unknown-owner", ERROR, "Unknown owner",
           "Use an employee_id, a department name from People, or COMPANY.",
           "owner {owner!r} is not an employee_id, a department in People, or COMPANY{hint}"),
    _entry("ambiguous-owner", ERROR, "Owner is both a person and a department",
           "Rename the department or the employee id so they differ.",
           "{owner!r} is both an employee_id and a department name; rename one of them"),
    _entry("duplicate-line", ERROR, "Scorecard line twice", "Merge the two rows into one.",
           scorecard="{owner} already has {kpi} on row {row}",
           rows="{owner} / {kpi} already has a row ({first}); merge the two rows"),
    _entry("weights-not-100", ERROR, "Weights do not add up to 100%",
           "Change the owner's weights so they add up to 100%.",
           "the weights of {owner} add up to {percent:.4g}%, not 100% (cells {cells})"),
    _entry("target-not-positive", ERROR, "Target not above zero", "Type a target above zero.",
           line="target must be above 0 for a {direction}-is-better KPI (attainment divides "
                "by it)",
           monthly="monthly targets of {owner} / {kpi} must be above 0"),
    _entry("bad-threshold", ERROR, "Threshold on the wrong side",
           "Move the threshold to the other side of the target.",
           higher="threshold {threshold:g} must be below target {target:g} (higher is better)",
           lower="threshold {threshold:g} must be above target {target:g} (lower is better)"),
    _entry("bad-stretch", ERROR, "Stretch on the wrong side",
           "Move the stretch to the other side of the target.",
           higher="stretch {stretch:g} must be above target {target:g} (higher is better)",
           lower="stretch {stretch:g} must be below target {target:g} (lower is better)",
           negative="stretch cannot be negative"),
    _entry("missing-target-max", ERROR, "Range KPI without target_max",
           "Type target_max for this range KPI.",
           "{kpi} is a range KPI; target_max is required",
           no_column="{kpi} is a range KPI; target_max is required (add a target_max column)"),
    _entry("bad-target-max", ERROR, "target_max below target",
           "Type a target_max at or above the target.",
           "target_max {target_max:g} is below target {target:g}"),
    # ------------------------------------------------------------------ Actuals and Targets
    _entry("formula-has-actuals", ERROR, "Actuals for a formula KPI",
           "Delete this row: a formula KPI is computed from its parts.",
           "{kpi} is a formula KPI, computed from {parts}; type these figures in rows for "
           "{parts} instead (or, to type {kpi} itself, clear its formula in KPIs and give it "
           "an aggregation)"),
    _entry("missing-component-actuals", ERROR, "Formula part without actuals",
           "Add actuals for the formula's parts for this owner.",
           "{kpi} = {formula} needs actuals of {component} for {owner}; add an Actuals row"),
    _entry("unknown-scorecard-line", ERROR, "No scorecard line for this row",
           "Add the scorecard line, or delete this row.",
           actuals="{owner} has no scorecard line that uses {kpi}; add that line to "
                   "Scorecards, or correct the owner or kpi_id of this row",
           targets="{owner} / {kpi} is not a scorecard line; targets are phased only for "
                   "scorecard lines"),
    _entry("duplicate-actual", ERROR, "Two values for one month",
           "Keep one value for the owner, KPI and month.",
           "{owner} / {kpi} has a second value for {month} (first on {first})"),
    _entry("no-actuals", WARNING, "No actuals", "Type this owner's actuals (or kpireport "
           "import them).", "{owner} / {kpi} has no actuals at all"),
    # ------------------------------------------------------------------ Bands
    _entry("bands-first-not-zero", ERROR, "First band above 0%", "Start the first band at 0%.",
           "the first band must start at 0% so every score has a band"),
    _entry("bands-not-increasing", ERROR, "Bands out of order",
           "Sort the bands by min_score, each above the one before.",
           "min_score {low:.4g} must be above the band before ({previous:.4g}); sort the bands "
           "by min_score"),
    # ------------------------------------------------------------------ build
    _entry("division-by-zero", WARNING, "Formula divides by zero",
           "Nothing to do, or give the formula's divisor actuals for that window.",
           unplaced("{owner} / {kpi} ({window}): {formula} divides by zero; shown as no data"),
           stage="build"),
)

CATALOGUE: Mapping[str, Entry] = MappingProxyType({e.code: e for e in ENTRIES})
UNKNOWN_FIX = "See the README's validation table."


def fix_for(code: str) -> str:
    """What to do about an issue of ``code`` (a pointer to the README for a code not here)."""
    entry = CATALOGUE.get(code)
    return entry.fix if entry is not None else UNKNOWN_FIX
