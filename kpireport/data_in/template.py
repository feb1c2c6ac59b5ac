"""Write the standard workbook: the blank template, the samples, and ``prepare``.

One writer serves all three: it lays out every sheet of SPEC §1 as an Excel table with a styled,
frozen header, notes on the headers, number formats and drop-down lists. openpyxl's write-only
mode keeps the 1,000-person synthetic sample to a few seconds.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kpireport.core.errors import OutputError
from kpireport.core.files import replacing
from kpireport.core.i18n import LOCALE_DIR
from kpireport.core.model import month_label, month_of
from kpireport.core.spec import (
    AGGREGATIONS,
    DIRECTIONS,
    LEVELS,
    REPORTS,
    SETTINGS,
    SHEETS,
    SHEETS_BY_NAME,
    UNITS,
    Column,
)

HEADER_FILL = "1F3A5F"
HEADER_FONT = "FFFFFF"
MIN_TABLE_ROWS = 1000  # formats and validations reach this far below the header
FIXED_TIME = dt.datetime(2026, 1, 1)  # workbook properties, so regenerated files compare equal

NUMBER_FORMATS = {
    "fraction": "0.0%",
    "money": "#,##0.00",
    "date": "yyyy-mm-dd",
    "int": "0",
}
CHOICES = {"unit": UNITS, "direction": DIRECTIONS, "aggregation": AGGREGATIONS,
           "level": LEVELS, "report": REPORTS}


@dataclass
class WorkbookData:
    """Rows for every sheet, keyed by sheet name; each row maps column name → value."""

    settings: dict[str, object] = field(default_factory=dict)
    sheets: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    months: list[int] = field(default_factory=list)  # Month numbers for Targets / Actuals
    cell_formats: dict[tuple[str, int, str], str] = field(default_factory=dict)
    money_format: str = "#,##0.00"
    texts: dict[str, str] = field(default_factory=dict)  # English → the workbook's language

    def t(self, text: str) -> str:
        return self.texts.get(text) or text


def year_months(year: int, start_month: int = 1) -> list[int]:
    first = month_of(year, start_month)
    return list(range(first, first + 12))


def write_template(path: str | Path, *, year: int | None = None, force: bool = False,
                   locale: str | None = None, currency: str | None = None,
                   language: str | None = None) -> Path:
    """Write the blank standard template to ``path``; with ``locale`` (e.g. vi_VN) its
    instructions, header notes and prompts are in that language and Settings' locale is set,
    and so is its currency: ``currency``, else the locale's country's (vi_VN: VND).
    ``language`` puts the texts in another language than the workbook's locale (the web app:
    the page's language)."""
    year = year or dt.date.today().year
    currency = currency or (locale_currency(locale) if locale else None)
    settings = {"pdf_protection": "employee", **({"locale": locale} if locale else {}),
                **({"currency": currency.upper()} if currency else {})}
    data = WorkbookData(settings=settings, months=year_months(year))
    return write_workbook(path, data, force=force, locale=language or locale)


def locale_currency(locale: str) -> str | None:
    """The currency of the locale's country today (vi_VN: VND, en_US: USD; None without
    a country)."""
    # lazy: babel is loaded only where it is used (start-up stays light)
    from babel import Locale

    # lazy: babel is loaded only where it is used (start-up stays light)
    from babel.numbers import get_territory_currencies

    territory = Locale.parse(locale).territory
    found = get_territory_currencies(territory, tender=True) if territory else []
    return found[0] if found else None


def is_currency(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 currency code Babel knows (any case)."""
    # lazy: babel is loaded only where it is used (start-up stays light)
    from babel.numbers import list_currencies

    return code.upper() in list_currencies()


TEMPLATE_DOMAIN = "template"  # kpireport/locale/<lang>/LC_MESSAGES/template.po


def template_locales() -> list[str]:
    """Languages with template texts: English and every template catalog."""

    return ["en"] + sorted(p.parent.parent.name for p in
                           LOCALE_DIR.glob(f"*/LC_MESSAGES/{TEMPLATE_DOMAIN}.po"))


def template_texts(locale: str | None) -> dict[str, str]:
    """English text → the text in ``locale`` (empty for English or an unknown language;
    see :func:`has_template_texts`)."""
    # lazy: babel is loaded only where it is used (start-up stays light)
    from babel import Locale

    # lazy: babel is loaded only where it is used (start-up stays light)
    from babel.messages.pofile import read_po

    if not locale:
        return {}
    parsed = Locale.parse(locale)
    for name in (str(parsed), parsed.language):
        po = LOCALE_DIR / name / "LC_MESSAGES" / f"{TEMPLATE_DOMAIN}.po"
        if po.exists():
            with po.open("rb") as handle:
                return {m.id: m.string for m in read_po(handle) if m.id and m.string}
    return {}


def has_template_texts(locale: str) -> bool:
    # lazy: babel is loaded only where it is used (start-up stays light)
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(locale).language in template_locales()
    except (ValueError, UnknownLocaleError):
        return False


def template_messages() -> list[str]:
    """Every English text the template writer puts in a workbook (for the catalogs)."""
    texts = [t for t, _ in README_LINES if t.strip()]
    texts += [c.help for spec in SHEETS for c in spec.columns]
    texts += [s.help for s in SETTINGS]
    for *_, title, text in VALIDATIONS.values():
        texts += [title, text]
    texts += list(EXTRA_TEXTS)
    return list(dict.fromkeys(texts))


EXTRA_TEXTS = ("Required. ", "Value for {name} (one month).", "Choose one of: {choices}",
               "Invalid {name}", "A month number from 1 to 12",
               "One month's value: a plain number (a percent as 25%).")


def write_workbook(path: str | Path, data: WorkbookData, *, force: bool = False,
                   locale: str | None = None) -> Path:
    """Write ``data`` as a standard workbook, atomically; refuse to overwrite unless ``force``.
    Texts (README, notes, prompts) are in ``locale``, by default the workbook's own locale;
    sheet and column names are always those of SPEC §1."""
    target = Path(path)
    _check_target(target, force)
    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl import Workbook

    texts = template_texts(locale or str(data.settings.get("locale") or "") or None)
    data.texts = texts

    book = Workbook(write_only=True)
    book.properties.creator = "kpireport"
    book.properties.created = FIXED_TIME
    book.properties.modified = FIXED_TIME
    _readme_sheet(book, data)
    for spec in SHEETS:
        _SheetWriter(book, spec, data).write()
    _save_atomically(book, target)
    return target


def _check_target(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise OutputError(f"{target} already exists; use --force to overwrite it")
    if target.exists() and target.is_dir():
        raise OutputError(f"{target} is a folder; give a file name such as kpis.xlsx")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {target}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {target}: the folder {parent} is not writable")
    if target.suffix.lower() not in (".xlsx", ".xlsm"):
        raise OutputError(f"{target}: the file name must end in .xlsx")
    Path(_temp_file(target)).unlink()


def _temp_file(target: Path) -> str:
    """A temporary file beside ``target``; made before any work so a bad folder fails fast."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    return tmp


def _save_atomically(book, target: Path) -> None:
    try:
        with replacing(target) as temporary:
            book.save(temporary)
            _normalise_zip_times(temporary)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None


def _normalise_zip_times(path: Path) -> None:
    """Give every zip member the same timestamp so regenerated files are byte-identical."""

    with zipfile.ZipFile(path) as src:
        items = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, payload in items:
            fresh = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            fresh.compress_type = zipfile.ZIP_DEFLATED
            fresh.external_attr = info.external_attr
            dst.writestr(fresh, payload)


README_LINES = (
    ("kpireport workbook — how to fill it in", True),
    ("", False),
    ("1. Settings: type your organisation's name; change the other values only if you need to.",
     False),
    ("2. People: one row per employee. manager_id is the employee_id of the manager.", False),
    ("3. Goals (optional): strategic goals, and the tactical goals that serve them.", False),
    ("4. KPIs: the catalogue. A formula KPI (e.g. SIGNUPS / VISITS) needs no aggregation.",
     False),
    ("5. Scorecards: who is measured on which KPI, the weight (per owner 100% in all)",
     False),
    ("   and the monthly target.", False),
    ("   An owner is an employee_id, a department name, or COMPANY.", False),
    ("6. Bands: salary and bonus bands, from 0% upwards.", False),
    ("7. Actuals: one row per scorecard line and one column per month (step b lays them out).",
     False),
    ("   Type each month's actual value; leave a cell blank when there is no value.", False),
    ("", False),
    ("Then, in the browser", True),
    ("a. Start the app with `kpireport serve` and open the address it prints.", False),
    ("b. Upload this workbook and press “Lay out my Actuals sheet”; download that version", False),
    ("   and type the actuals.", False),
    ("c. Upload it again: every problem is listed with its sheet, cell and fix. Download the",
     False),
    ("   copy with every issue marked, correct it and upload it.", False),
    ("d. Build the reports, look them over, approve them and send them.", False),
    ("", False),
    ("Or from a terminal", True),
    ("`kpireport prepare this.xlsx` lays out the Actuals rows.", False),
    ("`kpireport check this.xlsx` lists every problem by sheet and cell.", False),
    ("`kpireport build this.xlsx --out reports` writes the reviews.", False),
    ("`kpireport send reports/YYYY-MM --book this.xlsx` e-mails them.", False),
    ("", False),
    ("Hover over a column header to read what it means. Percentages are typed as 25% "
     "(or 0.25).", False),
    ("Extra columns (notes, names next to ids) are allowed and ignored.", False),
)


def _readme_sheet(book, data: WorkbookData) -> None:
    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.cell import WriteOnlyCell

    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.styles import Alignment, Font

    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.worksheet.properties import PageSetupProperties

    sheet = book.create_sheet("README")
    sheet.column_dimensions["A"].width = 100
    for text, heading in README_LINES:
        cell = WriteOnlyCell(sheet, value=data.t(text) if text.strip() else text)
        cell.font = Font(bold=True, size=14, color=HEADER_FILL) if heading else Font(size=11)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.append([cell])
    # Printed on one page's width (long lines wrap instead of running off the page).
    sheet.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    sheet.page_setup.paperSize = "9"
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 0
    sheet.print_area = f"A1:A{len(README_LINES)}"


class _SheetWriter:
    """Lays out one standard sheet."""

    def __init__(self, book, spec, data: WorkbookData) -> None:
        self.book, self.spec, self.data = book, spec, data
        self.columns: list[Column] = list(spec.columns)
        self.headers = [c.name for c in self.columns]
        if spec.month_columns:
            self.headers += [month_label(m) for m in data.months]

    def rows(self) -> list[dict[str, object]]:
        if self.spec.name == "Settings":
            return [{"setting": s.name, "value": self.data.settings.get(s.name, s.default),
                     "meaning": self.data.t(s.help)} for s in SETTINGS]
        return self.data.sheets.get(self.spec.name, [])

    def write(self) -> None:
        # lazy: openpyxl is loaded only where it is used (start-up stays light)
        from openpyxl.comments import Comment

        # lazy: openpyxl is loaded only where it is used (start-up stays light)
        from openpyxl.styles import Alignment, Font, PatternFill

        # lazy: openpyxl is loaded only where it is used (start-up stays light)
        from openpyxl.utils import get_column_letter

        sheet = self.book.create_sheet(self.spec.name)
        sheet.freeze_panes = "C2" if self.spec.month_columns else "A2"
        for index, name in enumerate(self.headers):
            column = self._column(name)
            dimension = sheet.column_dimensions[get_column_letter(index + 1)]
            dimension.width = column.width if column else 12
            # A column style: what a person types below the last row gets the format too.
            fmt = self._format(column)
            if fmt is not None:
                dimension.number_format = fmt
        self._print_setup(sheet)
        header = []
        # lazy: openpyxl is loaded only where it is used (start-up stays light)
        from openpyxl.cell import WriteOnlyCell

        for name in self.headers:
            cell = WriteOnlyCell(sheet, value=name)
            cell.font = Font(bold=True, color=HEADER_FONT)
            cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
            cell.alignment = Alignment(vertical="center")
            column = self._column(name)
            t = self.data.t
            text = t(column.help) if column else t("Value for {name} (one month).").format(
                name=name)
            if column is not None and column.required:
                text = t("Required. ") + text
            note = Comment(text, "kpireport")
            note.width, note.height = 260, 90
            cell.comment = note
            header.append(cell)
        sheet.append(header)
        rows = self.rows()
        for number, row in enumerate(rows):
            sheet.append(self._row_cells(sheet, number, row))
        if not rows:
            sheet.append([None] * len(self.headers))
        last_row = max(len(rows), 1) + 1
        self._add_table(sheet, last_row)
        self._add_validations(sheet, max(last_row, MIN_TABLE_ROWS))

    def _format(self, column: Column | None) -> str | None:
        """The number format of a column. Targets, thresholds and month values stay General:
        one column holds counts, money and percents (row by row, see ``prepare``)."""
        if column is None:
            return None
        if column.kind == "money":
            return self.data.money_format
        return NUMBER_FORMATS.get(column.kind)

    def _print_setup(self, sheet) -> None:
        """Print the sheet across one page's width, landscape, the header on every page."""
        # lazy: openpyxl is loaded only where it is used (start-up stays light)
        from openpyxl.utils import get_column_letter

        # lazy: openpyxl is loaded only where it is used (start-up stays light)
        from openpyxl.worksheet.properties import PageSetupProperties

        sheet.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
        sheet.page_setup.orientation = "landscape"
        sheet.page_setup.paperSize = "9"  # A4
        sheet.page_setup.fitToWidth = 1
        sheet.page_setup.fitToHeight = 0  # as many pages down as the rows need
        sheet.print_title_rows = "1:1"
        rows = max(len(self.rows()), 1) + 1
        sheet.print_area = f"A1:{get_column_letter(len(self.headers))}{rows}"

    def _column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def _row_cells(self, sheet, number: int, row: dict[str, object]) -> list:
        # lazy: openpyxl is loaded only where it is used (start-up stays light)
        from openpyxl.cell import WriteOnlyCell

        cells = []
        for name in self.headers:
            value = row.get(name)
            column = self._column(name)
            fmt = self.data.cell_formats.get((self.spec.name, number, name))
            if self.spec.name == "Settings" and name == "value" and \
                    SETTINGS[number].kind == "percent":
                fmt = "0%"
            if fmt is None and column is not None:
                fmt = self.data.money_format if column.kind == "money" else \
                    NUMBER_FORMATS.get(column.kind)
            if fmt is None and column is None and self.spec.month_columns:
                fmt = self.data.cell_formats.get((self.spec.name, number, "*"))
            if value is None or fmt is None:
                cells.append(value)
                continue
            cell = WriteOnlyCell(sheet, value=value)
            cell.number_format = fmt
            cells.append(cell)
        return cells

    def _add_table(self, sheet, last_row: int) -> None:
        # lazy: openpyxl is loaded only where it is used (start-up stays light)
        from openpyxl.utils import get_column_letter

        # lazy: openpyxl is loaded only where it is used (start-up stays light)
        from openpyxl.worksheet.table import Table, TableStyleInfo

        ref = f"A1:{get_column_letter(len(self.headers))}{last_row}"
        table = Table(displayName=f"tbl{self.spec.name}", ref=ref)
        table.tableStyleInfo = TableStyleInfo(name="TableStyleLight9", showRowStripes=True)
        table._initialise_columns()  # write-only mode cannot read the header cells back
        for column, name in zip(table.tableColumns, self.headers):
            column.name = name
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "In write-only mode")  # columns are set above
            sheet.add_table(table)

    def _add_validations(self, sheet, last_row: int) -> None:
        # lazy: openpyxl is loaded only where it is used (start-up stays light)
        from openpyxl.utils import get_column_letter

        # lazy: openpyxl is loaded only where it is used (start-up stays light)
        from openpyxl.worksheet.datavalidation import DataValidation

        for index, name in enumerate(self.headers):
            column = self._column(name)
            if column is None:
                continue
            letter = get_column_letter(index + 1)
            rng = f"{letter}2:{letter}{last_row}"
            formula = None
            if name in CHOICES and self.spec.name != "Settings":
                formula = '"' + ",".join(CHOICES[name]) + '"'
            elif column.refers_to is not None:
                other, other_col = column.refers_to
                other_letter = get_column_letter(
                    [c.name for c in SHEETS_BY_NAME[other].columns].index(other_col) + 1)
                formula = f"{other}!${other_letter}$2:${other_letter}$5000"
            if formula is not None:
                check = DataValidation(type="list", formula1=formula, allow_blank=True,
                                       showErrorMessage=column.refers_to is None)
                check.error = self.data.t("Choose one of: {choices}").format(
                    choices=formula.strip(chr(34)))
                check.errorTitle = self.data.t("Invalid {name}").format(name=name)
                check.prompt = self.data.t(column.help)
                check.showInputMessage = True
                check.add(rng)
                sheet.data_validations.append(check)
            elif column.kind in VALIDATIONS:
                sheet.data_validations.append(_number_check(column.kind, rng,
                                                            self.data.t(column.help),
                                                            self.data.t))
        if self.spec.month_columns:
            first, last = len(self.columns) + 1, len(self.headers)
            if last >= first:
                rng = f"{get_column_letter(first)}2:{get_column_letter(last)}{last_row}"
                sheet.data_validations.append(_number_check(
                    "number", rng,
                    self.data.t("One month's value: a plain number (a percent as 25%)."),
                    self.data.t))
        if self.spec.name == "Settings":
            self._settings_validations(sheet)

    def _settings_validations(self, sheet) -> None:
        for row, setting in enumerate(SETTINGS, start=2):
            if setting.kind == "percent":
                sheet.data_validations.append(_number_check(
                    "fraction", f"B{row}", self.data.t(setting.help), self.data.t))
        self._settings_choices(sheet)

    def _settings_choices(self, sheet) -> None:
        # lazy: openpyxl is loaded only where it is used (start-up stays light)
        from openpyxl.worksheet.datavalidation import DataValidation

        for row, setting in enumerate(SETTINGS, start=2):
            if setting.choices:
                check = DataValidation(type="list", formula1='"' + ",".join(setting.choices) + '"',
                                       allow_blank=True, showErrorMessage=True)
                check.error = self.data.t("Choose one of: {choices}").format(
                    choices=", ".join(setting.choices))
            elif setting.kind == "int":
                check = DataValidation(type="whole", operator="between", formula1="1",
                                       formula2="12", allow_blank=True, showErrorMessage=True)
                check.error = self.data.t("A month number from 1 to 12")
            else:
                continue
            check.add(f"B{row}")
            sheet.data_validations.append(check)


# (type, operator, formula1, formula2, error title, error text) of a typed-number column.
VALIDATIONS = {
    "fraction": ("decimal", "between", "-10", "10", "Type a percentage",
                 "Type a percentage such as 25% (or 0.25) — not 25."),
    "number": ("decimal", "between", "-1E+15", "1E+15", "Type a number",
               "Type a number such as 1200 or 12.5, without units or text."),
    "money": ("decimal", "between", "0", "1E+15", "Type an amount",
              "Type an amount of 0 or more, such as 85000, without the currency."),
    "int": ("whole", "between", "0", "6", "Type a whole number",
            "Type a whole number from 0 to 6."),
    "date": ("date", "greaterThan", "1", None, "Type a date",
             "Type a date such as 2026-03-31."),
}


def _number_check(kind: str, rng: str, prompt: str, t=lambda text: text):
    """A validation that stops a wrong entry with an error alert saying what to type."""
    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.worksheet.datavalidation import DataValidation

    kind_, operator, low, high, title, text = VALIDATIONS[kind]
    check = DataValidation(type=kind_, operator=operator, formula1=low, formula2=high,
                           allow_blank=True, showErrorMessage=True, errorStyle="stop",
                           showInputMessage=True)
    check.errorTitle, check.error = t(title)[:32], t(text)
    check.promptTitle, check.prompt = t(title)[:32], prompt[:255]
    check.add(rng)
    return check


__all__: Sequence[str] = ("write_template", "write_workbook", "WorkbookData", "year_months")
