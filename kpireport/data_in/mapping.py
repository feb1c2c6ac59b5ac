"""Mapping files for ``kpireport import``: which columns feed which KPI, and how.

A mapping is TOML: a ``[source]`` table (owner, date, filters, dialect) and one
``[[measure]]`` per KPI. Every mistake is one :class:`MappingError` that names the file and
the key; docs/importing.md documents every key, and worked examples ship in
``kpireport/data_in/mappings/``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from kpireport.core.errors import KpireportError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

COMBINE = ("sum", "count", "distinct", "average", "last", "min", "max")
OWNER_MATCH = ("auto", "employee_id", "email", "name")

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
        # lazy: codecs is loaded only where it is used (start-up stays light)
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
            found.append((column, tuple(match_text(v) for v in items), negate))
    return tuple(found)


def match_text(value: object) -> str:
    """How texts are compared: spacing collapsed, case-folded (1001.0 from a cell is "1001")."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool):
        value = "true" if value else "false"
    return " ".join(str(value).split()).casefold()
