"""``kpireport import``: monthly actuals from CRM and ad-platform exports, without retyping.

A mapping file (TOML) says which column names the owner, which holds the date, which KPI each
measure feeds and how records combine into a month; a long-format file (``owner, kpi_id,
period, actual``) needs none. :func:`plan_import` reads and maps everything and touches
nothing; :func:`apply_import` writes the plan into the Actuals sheet (backup first, then an
atomic save) and records the file in a ``Sources`` sheet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kpireport.core.collector import bounded_step
from kpireport.core.errors import InvalidWorkbook, KpireportError
from kpireport.core.model import Book, Month, month_label
from kpireport.core.spec import COMPANY, normalise
from kpireport.data_in.actuals_sheet import (
    ActualsSheet,
    Change,  # noqa: F401 (part of the import's API)
    write_actuals,
)
from kpireport.data_in.mapping import (  # noqa: F401  (load_mapping and friends: the import's API)
    SHIPPED,
    Mapping,
    MappingError,
    Measure,
    load_mapping,
    long_mapping,
    match_text,
    shipped_mappings,
)
from kpireport.data_in.sources import (
    Selection,
    Source,
    detect_decimal,
    months_of,
    parse_dates,
    parse_numbers,
    read_source,
)
from kpireport.read.validate import _allowed_actuals, validate
from kpireport.read.workbook import read_workbook

SOURCES_SHEET = "Sources"
SOURCES_HEADER = ("file", "sha256", "imported_at", "records", "cells_changed", "mapping")
LONG_COLUMNS = ("owner", "kpi_id", "period", "actual")


# ---------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class BadRecord:
    line: int  # source line (CSV) or sheet row (xlsx)
    reason: str
    unit: str = "line"  # "line" of a CSV, "row" of a sheet


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
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # helper-column texts


def plan_import(source_path: Path, book_path: Path, mapping_path: Path | None = None
                ) -> ImportPlan:
    """Read the export and the workbook and work out every change; write nothing."""

    refuse_if_open(Path(book_path))
    book, raw = _load_book(Path(book_path))
    mapping = load_mapping(mapping_path) if mapping_path else None
    source_path = Path(source_path)
    chosen = {"mapping": mapping}

    def select(head: pd.DataFrame, delimiter: str) -> Selection:
        if chosen["mapping"] is None:
            chosen["mapping"] = _long_or_refuse(source_path.name, head.columns)
        return _selection(chosen["mapping"], head, delimiter, source_path.name)

    hint = (mapping.owner, mapping.date) if mapping else ("owner", "kpi_id")
    source = read_source(source_path, encoding=mapping and mapping.encoding,
                         delimiter=mapping and mapping.delimiter, sheet=mapping and mapping.sheet,
                         select=select, header_hint=hint)
    mapping = chosen["mapping"] or _long_or_refuse(source_path.name, source.frame.columns)
    values, bad, used, details, unscored = _map_records(source, mapping, book)
    actuals = next(s for s in raw.sheets if normalise(s.name) == "actuals")
    changes, new_rows, new_months = ActualsSheet(actuals.rows).diff(values)
    labels = {"owner_name": {p.employee_id: p.name for p in book.people},
              "kpi": {k.kpi_id: k.kpi for k in book.kpis},
              "unit": {k.kpi_id: k.unit for k in book.kpis}}
    return ImportPlan(source, Path(book_path), mapping, values, changes, bad, used, new_rows,
                      new_months, [source.where(), *details], unscored, labels)


def _long_or_refuse(name: str, columns) -> Mapping:
    missing = [c for c in LONG_COLUMNS if c not in {normalise(h) for h in columns}]
    if missing:
        raise MappingError(f"{name}: no --map given, and the file is not in the long format "
                           f"(owner, kpi_id, period, actual; missing: {', '.join(missing)}); "
                           "write a mapping file (see docs/importing.md)")
    return long_mapping()


def _selection(mapping: Mapping, head: pd.DataFrame, delimiter: str, file: str) -> Selection:
    """The columns a mapping uses (each checked), and which hold numbers to sum or average."""
    text_roles = [(mapping.owner, "owner"), (mapping.date, "date")]
    text_roles += [(column, "filter") for column, _, _ in mapping.where]
    if mapping.kpi_column:
        text_roles.append((mapping.kpi_column, "KPI"))
    number_roles = []
    for measure in mapping.measures:
        text_roles += [(column, "filter") for column, _, _ in measure.where]
        if measure.column and measure.combine == "distinct":
            text_roles.append((measure.column, f"{measure.kpi} measure"))
        elif measure.column:
            number_roles.append((measure.column, f"{measure.kpi or 'value'} measure"))

    def resolve(name: str, role: str) -> str:
        found = next((c for c in head.columns if normalise(c) == normalise(name)), None)
        if found is None:
            raise MappingError(f"{mapping.name}: {role} column {name!r} is not in {file} "
                               f"(columns: {column_list(head.columns)})")
        return found

    text = [resolve(n, r) for n, r in text_roles]
    numbers = [c for c in dict.fromkeys(resolve(n, r) for n, r in number_roles) if c not in text]
    decimal = mapping.decimal or detect_decimal([head[c] for c in numbers], delimiter)
    return Selection(list(dict.fromkeys(text + numbers)), numbers, decimal)


def column_list(columns, limit: int = 20) -> str:
    """Column names for a one-line message (line breaks inside a header become spaces)."""
    names = [" ".join(str(c).split()) for c in columns]
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def refuse_if_open(path: Path) -> None:
    """Excel and LibreOffice leave a lock file beside a workbook they have open."""
    for lock, program in ((f"~${path.name}", "Excel"), (f".~lock.{path.name}#", "LibreOffice")):
        if (path.parent / lock).exists():
            raise KpireportError(f"{path.name} is open in {program} (found {lock}); close it "
                                 "there first, then import again")


def _load_book(path: Path):
    """The validated workbook. Whether a month can be reported is not asked here: a book
    with no actuals yet is what an import fills (the written result is checked in full)."""

    with bounded_step():  # the same pause as check (kpireport.core.collector)
        raw = read_workbook(path)
        book, issues = validate(raw, need_period=False)
    if book is None:
        raise InvalidWorkbook(issues)
    return book, raw


def _column(source: Source, name: str, role: str, mapping: Mapping) -> pd.Series:
    wanted = normalise(name)
    found = next((c for c in source.frame.columns if normalise(c) == wanted), None)
    if found is None:
        columns = column_list(source.frame.columns)
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
        key = match_text(key)
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
            if match_text(person.name) not in lookup or match == "name":
                add(person.name, person.employee_id)
    return lookup


def _scored_keys(book: Book) -> set[tuple[str, str]]:
    """(owner, kpi_id) pairs that may have actuals — the validator's own rule: the lines,
    their formulas' parts, and people's figures that roll up into department/company lines."""

    return _allowed_actuals({p.employee_id: p for p in book.people},
                            {k.kpi_id: k for k in book.kpis}, list(book.scorecards))


@dataclass(frozen=True)
class _Coded:
    """A column as codes into its distinct values: text work is done once per value.

    An export of 100,000 deals has a few dozen owners, stages and pipelines; matching,
    filtering and counting distinct values on the codes keeps the import at pandas speed.
    """

    codes: np.ndarray  # per record, into ``raw`` / ``norm``; blanks point at the last entry
    raw: np.ndarray  # the distinct cell values (None last, for blanks)
    norm: np.ndarray  # their text for matching: spacing collapsed, case-folded ("" if blank)

    @classmethod
    def of(cls, series: pd.Series) -> _Coded:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        raw = np.empty(len(uniques) + 1, dtype=object)
        raw[:-1] = np.asarray(uniques, dtype=object)
        codes = np.where(codes < 0, len(uniques), codes)
        norm = np.array([match_text(v) if v is not None and v == v else "" for v in raw],
                        dtype=object)
        return cls(codes, raw, norm)

    def per_record(self, per_value: list | np.ndarray, dtype=object) -> np.ndarray:
        return np.asarray(per_value, dtype=dtype)[self.codes]

    def isin(self, wanted: tuple[str, ...]) -> np.ndarray:
        return self.per_record([v in wanted for v in self.norm], bool)

    def blank(self) -> np.ndarray:
        return self.per_record([v == "" for v in self.norm], bool)

    def text(self, index: int) -> str:
        value = self.raw[self.codes[index]]
        return "" if value is None or value != value else str(value).strip()


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
    count = source.records
    coded: dict[str, _Coded] = {}

    def codes_of(name: str, role: str) -> _Coded:  # each column's texts are matched once
        key = normalise(name)
        if key not in coded:
            coded[key] = _Coded.of(_column(source, name, role, mapping))
        return coded[key]

    owner = codes_of(mapping.owner, "owner")
    dates_raw = _column(source, mapping.date, "date", mapping)
    base = np.ones(count, dtype=bool)
    for column, wanted, negate in mapping.where:
        hit = codes_of(column, "filter").isin(wanted)
        base &= ~hit if negate else hit
    masks = []
    for measure in mapping.measures:
        mask = base.copy()
        for column, wanted, negate in measure.where:
            hit = codes_of(column, "filter").isin(wanted)
            mask &= ~hit if negate else hit
        masks.append(mask)
    needed = np.logical_or.reduce(masks)
    number_columns = {m.column: _column(source, m.column, f"{m.kpi or 'value'} measure", mapping)
                      for m in mapping.measures
                      if m.column and m.combine not in ("count", "distinct")}
    decimal = mapping.decimal or source.decimal or detect_decimal(
        list(number_columns.values()), source.delimiter)
    day_first = mapping.day_first if mapping.day_first is not None else decimal == ","
    stamps, date_blank, date_format = parse_dates(dates_raw, mapping.date_format, day_first)
    months = months_of(stamps)
    details = [f"decimal {decimal!r}", f"dates {date_format or 'cells'}"]

    # Owners: each distinct owner text is looked up once; records get an owner index.
    lookup = _owner_lookup(book, mapping.owner_match)
    found = [lookup.get(v) if v else None for v in owner.norm]
    names = sorted({o for o in found if isinstance(o, str)})
    index_of = {name: i for i, name in enumerate(names)}
    owner_ids = owner.per_record([index_of.get(o, -1) if isinstance(o, str) else -1
                                  for o in found], np.int64)
    reasons = np.full(count, None, dtype=object)
    for index in np.flatnonzero(needed & (owner_ids < 0)):
        text = owner.text(index)
        word = "ambiguous" if text and match_text(text) in lookup else "unknown"
        reasons[index] = (f"{word} owner {text!r} ({mapping.owner})" if text
                          else f"no owner ({mapping.owner} is blank)")
    for index in np.flatnonzero(needed & (months < 0) & (reasons == None)):  # noqa: E711
        reasons[index] = (f"no date ({mapping.date} is blank)" if date_blank[index] else
                          f"{mapping.date} {str(dates_raw.iloc[index]).strip()!r} is not a date")
    kpi_names = sorted(k.kpi_id for k in book.kpis)
    if mapping.kpi_column is not None:
        kpi_col = codes_of(mapping.kpi_column, "KPI")
        kpi_ids = kpi_col.per_record([kpi_names.index(kpis[v].kpi_id) if v in kpis else -1
                                      for v in kpi_col.norm], np.int64)
        for index in np.flatnonzero(needed & (reasons == None)):  # noqa: E711
            if kpi_ids[index] < 0:
                reasons[index] = f"unknown KPI {kpi_col.text(index)!r}"
            elif kpis[kpi_names[kpi_ids[index]].casefold()].formula:
                reasons[index] = (f"{kpi_names[kpi_ids[index]]} is a formula KPI (computed "
                                  "from its parts)")
    else:
        kpi_ids = None

    numbers_of = {}
    for column, series in number_columns.items():
        numbers, blank = parse_numbers(series, decimal)
        numbers_of[column] = (numbers, blank)
        users = np.logical_or.reduce([mask for measure, mask in zip(mapping.measures, masks)
                                      if measure.column == column])
        for index in np.flatnonzero(users & np.isnan(numbers) & ~blank
                                    & (reasons == None)):  # noqa: E711
            reasons[index] = f"{column} {str(series.iloc[index]).strip()!r} is not a number"

    good = reasons == None  # noqa: E711
    unscored = _leave_out_unscored(book, mapping, kpis, masks, good, owner_ids, names,
                                   kpi_ids, kpi_names)
    values: dict[tuple[str, str, Month], float] = {}
    used = np.zeros(count, dtype=bool)
    order = np.lexsort((np.arange(count), stamps.astype("int64")))  # by date, then line
    for measure, mask in zip(mapping.measures, masks):
        rows = mask & good
        columns = {"owner": owner_ids, "month": months}
        if kpi_ids is not None:
            columns["kpi"] = kpi_ids
        if measure.combine == "distinct":
            values_of = codes_of(measure.column, "measure")
            same, _ = pd.factorize(values_of.norm)  # "C-1" and " c-1" are one customer
            columns["value"] = same[values_of.codes]
            rows &= ~values_of.blank()
        elif measure.column:
            numbers, blank = numbers_of[measure.column]
            columns["value"] = numbers
            rows &= ~blank
        else:
            columns["value"] = np.ones(count)
        used |= rows
        frame = pd.DataFrame(columns).iloc[order[rows[order]]]
        keys = ["owner", "kpi", "month"] if kpi_ids is not None else ["owner", "month"]
        if measure.combine == "single":  # the long format: one value per owner, KPI, month
            again = frame.duplicated(keys, keep="first").to_numpy()
            for index in frame.index[again]:
                reasons[index] = (f"a second value for {names[owner_ids[index]]} / "
                                  f"{kpi_names[kpi_ids[index]]} / "
                                  f"{month_label(int(months[index]))}")
            frame = frame[~again]
            combined = frame.groupby(keys, sort=True)["value"].last()
        elif measure.combine == "count":
            combined = frame.groupby(keys, sort=True)["value"].size()
        else:
            how = {"distinct": "nunique", "average": "mean"}.get(measure.combine,
                                                                  measure.combine)
            combined = frame.groupby(keys, sort=True)["value"].agg(how)
        fixed = kpis[measure.kpi.casefold()].kpi_id if kpi_ids is None else None
        for key, value in combined.items():
            if fixed is not None:
                values[(names[key[0]], fixed, int(key[1]))] = float(value)
            else:
                values[(names[key[0]], kpi_names[key[1]], int(key[2]))] = float(value)
    bad_index = np.flatnonzero(reasons != None)  # noqa: E711
    unit = "row" if source.kind == "xlsx" else "line"
    bad = [BadRecord(int(source.lines[i]), str(reasons[i]), unit) for i in bad_index]
    return values, bad, int((used & (reasons == None)).sum()), details, unscored  # noqa: E711


def _leave_out_unscored(book: Book, mapping: Mapping, kpis: dict, masks: list[np.ndarray],
                        good: np.ndarray, owner_ids: np.ndarray, names: list[str],
                        kpi_ids: np.ndarray | None, kpi_names: list[str]
                        ) -> dict[tuple[str, str], int]:
    """Values for an owner and KPI with no scorecard line would make the workbook invalid:
    they are left out (the masks are narrowed) and counted for a warning."""
    scored = _scored_keys(book)
    unscored: dict[tuple[str, str], int] = {}
    for measure, mask in zip(mapping.measures, masks):
        check = mask & good
        if kpi_ids is None:
            kid = kpis[measure.kpi.casefold()].kpi_id
            allowed = np.array([(name, kid) in scored for name in names] + [True])
            outside = check & ~allowed[owner_ids]
            ids, counts = np.unique(owner_ids[outside], return_counts=True)
            for owner_id, n in zip(ids, counts):
                unscored[(names[owner_id], kid)] = int(n)
        else:
            outside = np.zeros(len(mask), dtype=bool)
            for index in np.flatnonzero(check):
                key = (names[owner_ids[index]], kpi_names[kpi_ids[index]])
                if key not in scored:
                    unscored[key] = unscored.get(key, 0) + 1
                    outside[index] = True
        mask &= ~outside
    return unscored


# ---------------------------------------------------------------------------- apply
def apply_import(plan: ImportPlan, *, now: dt.datetime | None = None
                 ) -> tuple[Path, list[str]]:
    """Write the plan's values into the workbook (backup first).

    Returns the backup's path and what openpyxl could not keep of the workbook.
    """
    refuse_if_open(plan.book_path)

    now = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return write_actuals(plan.book_path, plan.values, SOURCES_SHEET, SOURCES_HEADER, [
        plan.source.path.name, plan.source.sha256, now.isoformat().replace("+00:00", "Z"),
        plan.source.records, len(plan.changes), plan.mapping.name], labels=plan.labels)
