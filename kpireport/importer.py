"""``kpireport import``: monthly actuals from CRM and ad-platform exports, without retyping.

A mapping file (TOML) says which column names the owner, which holds the date, which KPI each
measure feeds and how records combine into a month; a long-format file (``owner, kpi_id,
period, actual``) needs none. :func:`plan_import` reads and maps everything and touches
nothing; :func:`apply_import` writes the plan into the Actuals sheet (backup first, then an
atomic save) and records the file in a ``Sources`` sheet.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kpireport.errors import KpireportError
from kpireport.model import Book, Month, month_label
from kpireport.sources import (
    Source,
    detect_decimal,
    months_of,
    parse_dates,
    parse_numbers,
    read_source,
)
from kpireport.spec import COMPANY, SHEETS_BY_KEY, normalise

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

COMBINE = ("sum", "count", "distinct", "average", "last", "min", "max")
OWNER_MATCH = ("auto", "employee_id", "email", "name")
SOURCES_SHEET = "Sources"
SOURCES_HEADER = ("file", "sha256", "imported_at", "records", "cells_changed", "mapping")
LONG_COLUMNS = ("owner", "kpi_id", "period", "actual")


class MappingError(KpireportError):
    """The mapping file is not valid TOML or names something that is not there."""


# ---------------------------------------------------------------------------- mapping
@dataclass(frozen=True)
class Measure:
    kpi: str
    combine: str
    column: str | None = None  # not needed by count
    where: tuple[tuple[str, tuple[str, ...], bool], ...] = ()  # (column, values, negate)


@dataclass(frozen=True)
class Mapping:
    owner: str
    date: str
    measures: tuple[Measure, ...]
    owner_match: str = "auto"
    date_format: str | None = None
    day_first: bool | None = None
    decimal: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    where: tuple[tuple[str, tuple[str, ...], bool], ...] = ()
    name: str = ""
    kpi_column: str | None = None  # long format: the KPI of each record is in a column


def long_mapping() -> Mapping:
    """The mapping of a long-format file: owner, kpi_id, period, actual."""
    return Mapping(owner="owner", date="period", owner_match="auto", kpi_column="kpi_id",
                   measures=(Measure(kpi="", combine="single", column="actual"),),
                   name="(long format)")


_SOURCE_KEYS = {"owner", "owner_match", "date", "date_format", "day_first", "decimal",
                "encoding", "delimiter", "sheet", "where", "where_not"}
_MEASURE_KEYS = {"kpi", "column", "combine", "where", "where_not"}


SHIPPED = Path(__file__).resolve().parent / "mappings"


def shipped_mappings() -> list[str]:
    """Names of the worked mapping examples installed with kpireport."""
    return sorted(p.stem for p in SHIPPED.glob("*.toml"))


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; a mistake is one MappingError naming the key.

    A bare name such as ``hubspot-deals`` that is not a file names a shipped example.
    """
    path = Path(path)
    if not path.exists() and path.parent == Path(".") and path.stem in shipped_mappings() \
            and path.suffix in ("", ".toml"):
        path = SHIPPED / f"{path.stem}.toml"
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise MappingError(f"{path}: no such mapping file (shipped examples: "
                           f"{', '.join(shipped_mappings())})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path.name}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path.name}: not valid TOML ({exc})") from None
    name = path.name
    unknown = set(doc) - {"source", "measure"}
    if unknown:
        raise MappingError(f"{name}: unknown section or key {sorted(unknown)[0]!r} (use "
                           "[source] and [[measure]])")
    source = doc.get("source")
    if not isinstance(source, dict):
        raise MappingError(f"{name}: a [source] table with owner and date is needed")
    bad = set(source) - _SOURCE_KEYS
    if bad:
        raise MappingError(f"{name}: [source] has an unknown key {sorted(bad)[0]!r} (known: "
                           f"{', '.join(sorted(_SOURCE_KEYS))})")
    for key in ("owner", "date"):
        if not isinstance(source.get(key), str) or not source[key].strip():
            raise MappingError(f"{name}: [source] needs {key} = \"column name\"")
    match = source.get("owner_match", "auto")
    if match not in OWNER_MATCH:
        raise MappingError(f"{name}: owner_match = {match!r}; use one of "
                           f"{', '.join(OWNER_MATCH)}")
    decimal = source.get("decimal")
    if decimal not in (None, ",", "."):
        raise MappingError(f"{name}: decimal = {decimal!r}; use \",\" or \".\"")
    for key in ("date_format", "encoding", "delimiter", "sheet"):
        if key in source and not (isinstance(source[key], str) and source[key]):
            raise MappingError(f"{name}: [source] {key} must be a text")
    if "encoding" in source:
        import codecs

        try:
            codecs.lookup(source["encoding"])
        except LookupError:
            raise MappingError(f"{name}: encoding {source['encoding']!r} is not an encoding "
                               "Python knows (e.g. utf-8, cp1252)") from None
    if len(source.get("delimiter", ",")) != 1:
        raise MappingError(f"{name}: delimiter must be one character, e.g. \";\"")
    measures = doc.get("measure")
    if not isinstance(measures, list) or not measures:
        raise MappingError(f"{name}: at least one [[measure]] with kpi and combine is needed")
    parsed = []
    for number, item in enumerate(measures, start=1):
        where = f"{name}: measure {number}"
        if not isinstance(item, dict):
            raise MappingError(f"{where}: must be a table")
        bad = set(item) - _MEASURE_KEYS
        if bad:
            raise MappingError(f"{where}: unknown key {sorted(bad)[0]!r} (known: "
                               f"{', '.join(sorted(_MEASURE_KEYS))})")
        kpi, combine = item.get("kpi"), item.get("combine", "sum")
        if not isinstance(kpi, str) or not kpi.strip():
            raise MappingError(f"{where}: kpi = \"KPI_ID\" is needed")
        if combine not in COMBINE:
            raise MappingError(f"{where}: combine = {combine!r}; use one of "
                               f"{', '.join(COMBINE)}")
        column = item.get("column")
        if combine != "count" and not (isinstance(column, str) and column.strip()):
            raise MappingError(f"{where} ({kpi}): combine = {combine!r} needs column = "
                               "\"column name\"")
        parsed.append(Measure(kpi.strip(), combine, column,
                              _filters(item, f"{where} ({kpi})")))
    kpis = [m.kpi.casefold() for m in parsed]
    twice = next((m.kpi for m in parsed if kpis.count(m.kpi.casefold()) > 1), None)
    if twice:
        raise MappingError(f"{name}: KPI {twice} is fed by two measures; keep one")
    day_first = source.get("day_first")
    if day_first is not None and not isinstance(day_first, bool):
        raise MappingError(f"{name}: day_first must be true or false")
    return Mapping(owner=source["owner"], date=source["date"], measures=tuple(parsed),
                   owner_match=match, date_format=source.get("date_format"),
                   day_first=day_first, decimal=decimal, encoding=source.get("encoding"),
                   delimiter=source.get("delimiter"), sheet=source.get("sheet"),
                   where=_filters(source, f"{name}: [source]"), name=name)


def _filters(table: dict, where: str) -> tuple[tuple[str, tuple[str, ...], bool], ...]:
    found = []
    for key, negate in (("where", False), ("where_not", True)):
        value = table.get(key, {})
        if not isinstance(value, dict):
            raise MappingError(f"{where}: {key} must be a table, e.g. {key} = "
                               "{ \"Deal stage\" = \"Closed won\" }")
        for column, wanted in value.items():
            items = wanted if isinstance(wanted, list) else [wanted]
            if not items or any(isinstance(v, (dict, list)) for v in items):
                raise MappingError(f"{where}: {key}.{column} must be a value or a list")
            found.append((column, tuple(_text(v) for v in items), negate))
    return tuple(found)


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool):
        value = "true" if value else "false"
    return " ".join(str(value).split()).casefold()


# ---------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class BadRecord:
    line: int  # source line (CSV) or sheet row (xlsx)
    reason: str


@dataclass(frozen=True)
class Change:
    owner: str
    kpi: str
    month: Month
    old: float | None
    new: float

    @property
    def period(self) -> str:
        return month_label(self.month)


@dataclass
class ImportPlan:
    source: Source
    book_path: Path
    mapping: Mapping
    values: dict[tuple[str, str, Month], float]
    changes: list[Change]
    bad: list[BadRecord]
    used: int  # records that fed a measure
    new_rows: list[tuple[str, str]] = field(default_factory=list)
    new_months: list[Month] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # detected encoding, formats …
    unscored: dict[tuple[str, str], int] = field(default_factory=dict)  # left out: records


def plan_import(source_path: Path, book_path: Path, mapping_path: Path | None = None
                ) -> ImportPlan:
    """Read the export and the workbook and work out every change; write nothing."""
    from kpireport.actuals_sheet import ActualsSheet

    refuse_if_open(Path(book_path))
    book, raw = _load_book(Path(book_path))
    mapping = load_mapping(mapping_path) if mapping_path else None
    source = read_source(Path(source_path), encoding=mapping and mapping.encoding,
                         delimiter=mapping and mapping.delimiter, sheet=mapping and mapping.sheet)
    if mapping is None:
        missing = [c for c in LONG_COLUMNS if c not in {normalise(h) for h in source.frame}]
        if missing:
            raise MappingError(f"{source.path.name}: no --map given, and the file is not in the "
                               f"long format (owner, kpi_id, period, actual; missing: "
                               f"{', '.join(missing)}); write a mapping file (see the README)")
        mapping = long_mapping()
    values, bad, used, details, unscored = _map_records(source, mapping, book)
    actuals = next(s for s in raw.sheets if normalise(s.name) == "actuals")
    changes, new_rows, new_months = ActualsSheet(actuals.rows).diff(values)
    return ImportPlan(source, Path(book_path), mapping, values, changes, bad, used, new_rows,
                      new_months, [source.where(), *details], unscored)


def refuse_if_open(path: Path) -> None:
    """Excel and LibreOffice leave a lock file beside a workbook they have open."""
    for lock, program in ((f"~${path.name}", "Excel"), (f".~lock.{path.name}#", "LibreOffice")):
        if (path.parent / lock).exists():
            raise KpireportError(f"{path.name} is open in {program} (found {lock}); close it "
                                 "there first, then import again")


def _load_book(path: Path):
    """The validated workbook. A book with no actuals yet has no report period: that is fine."""
    from kpireport.errors import InvalidWorkbook
    from kpireport.validate import validate
    from kpireport.workbook import read_workbook

    raw = read_workbook(path)
    book, issues = validate(raw)
    errors = [i for i in issues if i.severity == "error"]
    if book is None and errors and all(i.code == "no-report-period" for i in errors):
        settings = next(s for s in raw.sheets
                        if SHEETS_BY_KEY.get(normalise(s.name)) is SHEETS_BY_KEY["settings"])
        header = next(row for row in settings.rows if any(v not in (None, "") for v in row))
        keys = [normalise(v) for v in header]
        row = [None] * len(header)
        row[keys.index("setting")], row[keys.index("value")] = "report_period", "2000-01"
        settings.rows.append(row)  # only to get the typed People and KPIs
        book, issues = validate(raw)
    if book is None:
        raise InvalidWorkbook(issues)
    return book, raw


def _column(source: Source, name: str, role: str, mapping: Mapping) -> pd.Series:
    wanted = normalise(name)
    found = next((c for c in source.frame.columns if normalise(c) == wanted), None)
    if found is None:
        columns = ", ".join(map(str, source.frame.columns))
        raise MappingError(f"{mapping.name}: {role} column {name!r} is not in "
                           f"{source.path.name} (columns: {columns})")
    series = source.frame[found]
    series.attrs["all_text"] = source.kind == "csv"
    return series


def _owner_lookup(book: Book, match: str) -> dict[str, str | None]:
    """Normalised owner text → employee_id (None when two people share it)."""
    lookup: dict[str, str | None] = {}

    def add(key: str | None, value: str) -> None:
        if not key:
            return
        key = _text(key)
        lookup[key] = value if lookup.get(key, value) == value else None

    if match in ("auto", "employee_id"):
        for person in book.people:
            add(person.employee_id, person.employee_id)
        for department in book.departments:
            add(department, department)
        add(COMPANY, COMPANY)
    if match in ("auto", "email"):
        for person in book.people:
            add(person.email, person.employee_id)
    if match in ("auto", "name"):
        for person in book.people:
            if _text(person.name) not in lookup or match == "name":
                add(person.name, person.employee_id)
    return lookup


def _scored_keys(book: Book) -> set[tuple[str, str]]:
    """(owner, kpi_id) pairs that may have actuals: the lines, their formulas' parts, and
    people's figures that roll up into their department's or the company's lines."""
    kpis = {k.kpi_id: k for k in book.kpis}
    members: dict[str, list[str]] = {COMPANY: [p.employee_id for p in book.people]}
    for person in book.people:
        members.setdefault(person.department, []).append(person.employee_id)
    keys = set()
    for line in book.scorecards:
        kpi = kpis.get(line.kpi_id)
        parts = list(kpi.components) if kpi is not None and kpi.formula else [line.kpi_id]
        for owner in [line.owner, *members.get(line.owner, [])]:
            keys.update((owner, part) for part in parts)
    return keys


def _norm_series(series: pd.Series) -> pd.Series:
    """Text for matching: whitespace collapsed, case-folded ("" for a blank cell)."""
    if not series.attrs.get("all_text"):
        return series.map(lambda v: "" if v is None or v != v else _text(v))
    return series.str.split().str.join(" ").str.casefold()


def _map_records(source: Source, mapping: Mapping, book: Book
                 ) -> tuple[dict, list[BadRecord], int, list[str], dict]:
    kpis = {k.kpi_id.casefold(): k for k in book.kpis}
    for measure in mapping.measures:
        if mapping.kpi_column is None:
            kpi = kpis.get(measure.kpi.casefold())
            if kpi is None:
                raise MappingError(f"{mapping.name}: KPI {measure.kpi!r} is not in the KPIs "
                                   f"sheet (known: {', '.join(k.kpi_id for k in book.kpis)})")
            if kpi.formula:
                raise MappingError(f"{mapping.name}: KPI {kpi.kpi_id} is a formula KPI "
                                   f"({kpi.formula}); map its parts instead")
    frame_len = source.records
    owner_text = _norm_series(_column(source, mapping.owner, "owner", mapping))
    dates_raw = _column(source, mapping.date, "date", mapping)
    base = np.ones(frame_len, dtype=bool)
    for column, wanted, negate in mapping.where:
        hit = _norm_series(_column(source, column, "filter", mapping)).isin(wanted).to_numpy()
        base &= ~hit if negate else hit
    measure_masks = []
    for measure in mapping.measures:
        mask = base.copy()
        for column, wanted, negate in measure.where:
            hit = _norm_series(_column(source, column, "filter", mapping)).isin(wanted).to_numpy()
            mask &= ~hit if negate else hit
        measure_masks.append(mask)
    number_columns = {m.column: _column(source, m.column, f"{m.kpi or 'value'} measure", mapping)
                      for m in mapping.measures if m.column and m.combine not in ("count",
                                                                                  "distinct")}
    decimal = mapping.decimal or detect_decimal(list(number_columns.values()), source.delimiter)
    day_first = mapping.day_first if mapping.day_first is not None else decimal == ","
    stamps, date_blank, date_format = parse_dates(dates_raw, mapping.date_format, day_first)
    months = months_of(stamps)
    details = [f"decimal {decimal!r}", f"dates {date_format or 'cells'}"]

    lookup = _owner_lookup(book, mapping.owner_match)
    owners = owner_text.map(lookup).to_numpy(dtype=object)
    known_owner = np.array([isinstance(o, str) for o in owners], dtype=bool)
    needed = np.zeros(frame_len, dtype=bool)
    for mask in measure_masks:
        needed |= mask
    reasons = np.full(frame_len, None, dtype=object)
    raw_owner = _column(source, mapping.owner, "owner", mapping).to_numpy(dtype=object)
    raw_dates = dates_raw.to_numpy(dtype=object)
    for index in np.flatnonzero(needed & ~known_owner):
        text = str(raw_owner[index] if raw_owner[index] is not None else "").strip()
        word = "ambiguous" if text and _text(text) in lookup else "unknown"
        reasons[index] = (f"{word} owner {text!r} ({mapping.owner})" if text
                          else f"no owner ({mapping.owner} is blank)")
    for index in np.flatnonzero(needed & (months < 0) & (reasons == None)):  # noqa: E711
        text = raw_dates[index]
        reasons[index] = (f"no date ({mapping.date} is blank)" if date_blank[index]
                          else f"{mapping.date} {str(text).strip()!r} is not a date")
    kpi_of_row = None
    if mapping.kpi_column is not None:
        kpi_text = _norm_series(_column(source, mapping.kpi_column, "KPI", mapping))
        kpi_of_row = kpi_text.map({k: v.kpi_id for k, v in kpis.items()}).to_numpy(dtype=object)
        raw_kpis = _column(source, mapping.kpi_column, "KPI", mapping).to_numpy(dtype=object)
        for index in np.flatnonzero(needed & (reasons == None)):  # noqa: E711
            kid = kpi_of_row[index]
            if not isinstance(kid, str):
                reasons[index] = f"unknown KPI {str(raw_kpis[index]).strip()!r}"
            elif kpis[kid.casefold()].formula:
                reasons[index] = f"{kid} is a formula KPI (computed from its parts)"

    scored = _scored_keys(book)
    series_values = {}
    for column, series in number_columns.items():
        numbers, blank = parse_numbers(series, decimal)
        series_values[column] = (numbers, blank)
        raw = series.to_numpy(dtype=object)
        users = np.zeros(frame_len, dtype=bool)
        for measure, mask in zip(mapping.measures, measure_masks):
            if measure.column == column:
                users |= mask
        for index in np.flatnonzero(users & np.isnan(numbers) & ~blank
                                    & (reasons == None)):  # noqa: E711
            reasons[index] = f"{column} {str(raw[index]).strip()!r} is not a number"

    good = reasons == None  # noqa: E711
    # Values for an owner and KPI with no scorecard line would make the workbook invalid;
    # they are left out and reported (the records are fine: the workbook decides).
    unscored: dict[tuple[str, str], int] = {}
    for number, (measure, mask) in enumerate(zip(mapping.measures, measure_masks)):
        check = mask & good
        if kpi_of_row is None:  # one KPI: a vectorised membership test
            kid = kpis[measure.kpi.casefold()].kpi_id
            allowed = {o for o, k in scored if k == kid}
            check &= ~pd.Series(owners).isin(allowed).to_numpy()
        for index in np.flatnonzero(check):
            key = (owners[index], kpi_of_row[index] if kpi_of_row is not None else kid)
            if key not in scored:
                unscored[key] = unscored.get(key, 0) + 1
                measure_masks[number][index] = False
    values: dict[tuple[str, str, Month], float] = {}
    used = np.zeros(frame_len, dtype=bool)
    order = np.lexsort((np.arange(frame_len), stamps.astype("int64")))  # by date, then line
    for measure, mask in zip(mapping.measures, measure_masks):
        rows = mask & good
        frame = pd.DataFrame({"owner": owners, "month": months})
        if kpi_of_row is not None:
            frame["kpi"] = kpi_of_row
        if measure.combine == "distinct":
            frame["value"] = _norm_series(_column(source, measure.column, "measure", mapping))
            rows &= (frame["value"] != "").to_numpy()
        elif measure.column:
            numbers, blank = series_values[measure.column]
            frame["value"] = numbers
            rows &= ~blank
        else:
            frame["value"] = 1.0
        used |= rows
        picked = frame.iloc[order][rows[order]]
        keys = ["owner", "kpi", "month"] if kpi_of_row is not None else ["owner", "month"]
        if measure.combine == "single":
            again = picked.duplicated(keys, keep="first").to_numpy()
            for position in np.flatnonzero(again):
                index = picked.index[position]
                reasons[index] = (f"a second value for {owners[index]} / {kpi_of_row[index]} "
                                  f"/ {month_label(int(months[index]))}")
            picked = picked[~again]
            combined = picked.groupby(keys, sort=True)["value"].last()
        else:
            how = {"sum": "sum", "count": "size", "distinct": "nunique", "average": "mean",
                   "last": "last", "min": "min", "max": "max"}[measure.combine]
            grouped = picked.groupby(keys, sort=True)["value"]
            combined = grouped.size() if how == "size" else grouped.agg(how)
        kpi_id = kpis[measure.kpi.casefold()].kpi_id if kpi_of_row is None else None
        for key, value in combined.items():
            if kpi_of_row is None:
                owner, month = key
                values[(owner, kpi_id, int(month))] = float(value)
            else:
                owner, kid, month = key
                values[(owner, kid, int(month))] = float(value)
    bad_index = np.flatnonzero(reasons != None)  # noqa: E711
    bad = [BadRecord(int(source.lines[i]), str(reasons[i])) for i in bad_index]
    return values, bad, int((used & (reasons == None)).sum()), details, unscored  # noqa: E711


# ---------------------------------------------------------------------------- apply
def apply_import(plan: ImportPlan, *, now: dt.datetime | None = None
                 ) -> tuple[Path, list[str]]:
    """Write the plan's values into the workbook (backup first).

    Returns the backup's path and what openpyxl could not keep of the workbook.
    """
    refuse_if_open(plan.book_path)
    from kpireport.actuals_sheet import write_actuals

    now = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return write_actuals(plan.book_path, plan.values, SOURCES_SHEET, SOURCES_HEADER, [
        plan.source.path.name, plan.source.sha256, now.isoformat().replace("+00:00", "Z"),
        plan.source.records, len(plan.changes), plan.mapping.name])
