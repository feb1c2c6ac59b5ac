"""Read an .xlsx file into plain rows that keep their cell addresses — no judgement here.

Before any parser sees the file, the zip directory and every XML part are checked so that a
hostile file (zip bomb, entity expansion, a cell at XFD1048576) is refused in bounded time and
memory. Values are then read with python-calamine (fast, native); the sheet XML is consulted
only for what calamine hides: Excel error values and formulas saved without a cached value.
"""

from __future__ import annotations

import functools
import hashlib
import re
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

from defusedxml import ElementTree as SafeET

from kpireport.core.errors import UnreadableWorkbook

MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_PART_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed, for parts over 1 MiB
MAX_MEMBERS = 10_000
MAX_CELLS = 6_000_000  # rows × columns a sheet may span
MAX_COLUMNS = 702  # ZZ

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


@dataclass
class RawSheet:
    """One sheet's cell values; ``rows[r][c]`` is the cell at row r+1, column c+1."""

    name: str
    rows: list[list[object]]
    hidden: bool = False
    errors: dict[tuple[int, int], str] = field(default_factory=dict)  # (r, c) -> '#N/A'
    uncached: set[tuple[int, int]] = field(default_factory=set)  # formulas with no value
    merged: list[str] = field(default_factory=list)  # A1 ranges


@dataclass
class RawBook:
    path: Path
    sha256: str
    sheets: list[RawSheet]


@lru_cache(maxsize=4096)
@functools.lru_cache(maxsize=1024)  # a workbook's columns: every cell address names one
def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def column_index(letters: str) -> int:
    value = 0
    for ch in letters:
        value = value * 26 + (ord(ch) - 64)
    return value - 1


def address(row: int, col: int) -> str:
    """Zero-based (row, col) → A1."""
    return f"{column_letter(col)}{row + 1}"  # letters cached: this runs per problem cell


def read_workbook(path: str | Path) -> RawBook:
    """Read every sheet of the workbook at ``path``; raise UnreadableWorkbook if it is not one."""
    path = Path(path)
    data = _read_bytes(path)
    _sniff(path, data)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableWorkbook(
            f"{path.name}: the file is damaged or truncated (not a complete .xlsx zip "
            f"archive: {exc})") from None
    with archive:
        _check_archive(path, archive)
        sheets = _read_sheets(path, archive, _sheet_parts(path, archive))
    return RawBook(path=path, sha256=hashlib.sha256(data).hexdigest(), sheets=sheets)


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UnreadableWorkbook(
                f"{path.name}: the file is {size / 1e6:.0f} MB; kpireport reads workbooks "
                f"up to {MAX_FILE_BYTES // 2**20} MB")
        return path.read_bytes()
    except FileNotFoundError:
        raise UnreadableWorkbook(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UnreadableWorkbook(f"{path}: is a folder, not a workbook") from None
    except PermissionError:
        raise UnreadableWorkbook(f"{path}: permission denied") from None
    except OSError as exc:
        raise UnreadableWorkbook(f"{path}: cannot be read ({exc.strerror})") from None


def _sniff(path: Path, data: bytes) -> None:
    """Say what the file is when it is not an .xlsx."""
    name = path.name
    if not data:
        raise UnreadableWorkbook(f"{name}: the file is empty (0 bytes), not a workbook")
    if data.startswith(_OLE_MAGIC):
        if "EncryptionInfo".encode("utf-16-le") in data:
            raise UnreadableWorkbook(
                f"{name}: the workbook is password-protected (encrypted); open it in Excel, "
                "remove the password (File > Info > Protect Workbook) and save it again")
        raise UnreadableWorkbook(
            f"{name}: this is a legacy Excel 97-2003 (.xls) file; open it in Excel or "
            "LibreOffice and save it as an Excel Workbook (.xlsx)")
    if data.startswith(b"PK"):
        head = data[:200]
        if b"mimetypeapplication/vnd.oasis.opendocument" in head:
            raise UnreadableWorkbook(
                f"{name}: this is an OpenDocument spreadsheet (.ods); save it as an Excel "
                "Workbook (.xlsx)")
        return
    if data.lstrip()[:5].lower() in (b"<?xml", b"<html", b"<!doc"):
        raise UnreadableWorkbook(f"{name}: this is an XML or HTML file, not an .xlsx workbook")
    sample = data[:4096]
    if b"\x00" not in sample:
        try:
            sample.decode("utf-8")
            kind = "a text file (CSV or similar)"
        except UnicodeDecodeError:
            kind = "a text file in a legacy encoding"
        raise UnreadableWorkbook(
            f"{name}: this is {kind}, not an .xlsx workbook; import it into Excel and save "
            "it as an Excel Workbook (.xlsx)")
    raise UnreadableWorkbook(f"{name}: not an .xlsx workbook (unknown binary format)")


def _check_archive(path: Path, archive: zipfile.ZipFile) -> None:
    """Check part count, sizes and compression ratios from the zip directory."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise UnreadableWorkbook(f"{path.name}: the archive has {len(infos)} parts; refused")
    names = set(_parts(archive))
    if "xl/workbook.bin" in names:
        raise UnreadableWorkbook(
            f"{path.name}: this is an Excel binary workbook (.xlsb); save it as an Excel "
            "Workbook (.xlsx)")
    if "[Content_Types].xml" not in names or "_rels/.rels" not in names:
        raise UnreadableWorkbook(
            f"{path.name}: a zip archive but not an Excel workbook (no package relationships)")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise UnreadableWorkbook(f"{path.name}: the archive is encrypted; refused")
        total += info.file_size
        if info.file_size > MAX_PART_BYTES or total > MAX_TOTAL_BYTES:
            raise UnreadableWorkbook(
                f"{path.name}: the file inflates to more than {MAX_PART_BYTES // 2**20} MB "
                "(a zip bomb or a far too large workbook); refused")
        if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise UnreadableWorkbook(
                f"{path.name}: part {info.filename} compresses "
                f"{info.file_size // max(info.compress_size, 1)}:1 "
                "(a zip bomb); refused")


def _read_part(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Inflate one part, never more than its declared size (the directory may lie)."""
    limit = min(info.file_size, MAX_PART_BYTES)
    try:
        with archive.open(info) as stream:
            data = stream.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise UnreadableWorkbook(
            f"{path.name}: part {info.filename} is damaged ({exc}); the file may be "
            "truncated") from None
    if len(data) > limit:
        raise UnreadableWorkbook(
            f"{path.name}: part {info.filename} inflates beyond its declared size; refused")
    _check_prolog(path, info.filename, data)
    return data


_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


def _check_prolog(path: Path, part: str, data: bytes) -> None:
    if _DOCTYPE.search(data[:65536]):
        raise UnreadableWorkbook(
            f"{path.name}: part {part} declares a DTD or XML entities (possible entity "
            "expansion or external-entity attack); refused")


def _parts(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Parts by normalised name (some writers use backslashes or a leading slash)."""
    return {_normpath(i.filename.replace("\\", "/")): i for i in archive.infolist()}


def _relationships(path: Path, archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo],
                   owner: str) -> dict[str, tuple[str, str]]:
    """Relationships of part ``owner`` ('' for the package): id -> (type, target part)."""
    folder = PurePosixPath(owner).parent if owner else PurePosixPath("")
    rels_name = _normpath(str(folder / "_rels" / (PurePosixPath(owner).name + ".rels")))
    if rels_name not in infos:
        return {}
    rels = _parse_xml(path, rels_name, _read_part(path, archive, infos[rels_name]))
    found: dict[str, tuple[str, str]] = {}
    for rel in rels.iter():
        if rel.tag.endswith("Relationship") and rel.get("Id"):
            target = rel.get("Target", "").replace("\\", "/")
            target = target[1:] if target.startswith("/") else str(folder / target)
            found[rel.get("Id")] = (rel.get("Type", ""), _normpath(target))
    return found


def _sheet_parts(path: Path, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Map sheet names to their worksheet parts via the package and workbook relationships."""
    infos = _parts(archive)
    # Every small XML part goes through the DTD check: entities and external refs refused.
    for name, info in infos.items():
        if name.endswith((".xml", ".rels", ".vml")) and "worksheets/" not in name:
            _read_part(path, archive, info)
    book_name = next((target for kind, target in _relationships(path, archive, infos, "").values()
                      if kind.endswith("/officeDocument")), None)
    if book_name is None or book_name not in infos:
        raise UnreadableWorkbook(
            f"{path.name}: a zip archive but not an Excel workbook (no workbook part)")
    if book_name.endswith(".bin"):
        raise UnreadableWorkbook(
            f"{path.name}: this is an Excel binary workbook (.xlsb); save it as an Excel "
            "Workbook (.xlsx)")
    book = _parse_xml(path, book_name, _read_part(path, archive, infos[book_name]))
    targets = _relationships(path, archive, infos, book_name)
    result: dict[str, zipfile.ZipInfo] = {}
    for sheet in book.iter():
        if sheet.tag.rsplit("}", 1)[-1] == "sheet":
            rid = next((v for k, v in sheet.attrib.items() if k.endswith("}id")), None)
            _, target = targets.get(rid or "", ("", ""))
            if target in infos and not target.endswith(".bin"):
                result[sheet.get("name", "")] = infos[target]
    return result


def _normpath(path: str) -> str:
    out: list[str] = []
    for piece in path.split("/"):
        if piece == "..":
            if out:
                out.pop()
        elif piece and piece != ".":
            out.append(piece)
    return "/".join(out)


def _parse_xml(path: Path, part: str, data: bytes):
    try:
        return SafeET.fromstring(data, forbid_dtd=True)
    except Exception as exc:  # defusedxml raises several unrelated types
        raise UnreadableWorkbook(f"{path.name}: part {part} is not valid XML ({exc})") from None


@dataclass
class _SheetScan:
    errors: dict[tuple[int, int], str]
    uncached: set[tuple[int, int]]


_CELL_REF = re.compile(rb"\sr=\"([A-Z]+)(\d+)\"")
_ROW_REF = re.compile(rb"\sr=\"(\d+)\"")
# Starts with a literal so the regex engine can skip ahead fast; a false match only costs the
# exact measurement below.
_MAYBE_LARGE = re.compile(rb"r=\"(?:[A-Z]{3,}|[B-Z][A-Z]|[A-Z]{0,2}[0-9]{6,})")
# Error cells and formulas (any namespace prefix): only then is the sheet XML parsed.
_PARSE_MARKERS = (b't="e"', b"<f>", b"<f ", b":f>", b":f ")


class _SheetScanner:
    """Bound a sheet's extent and find what calamine hides (errors, uncached formulas)."""

    def __init__(self, path: Path, name: str, info: zipfile.ZipInfo) -> None:
        self.path, self.name, self.info = path, name, info

    def scan(self, archive: zipfile.ZipFile) -> _SheetScan:
        data = _read_part(self.path, archive, self.info)
        if _MAYBE_LARGE.search(data):  # columns from BA or rows from 100,000: measure exactly
            refs = _CELL_REF.findall(data)
            max_col = max((column_index(c.decode()) for c, _ in refs), default=0)
            max_row = max([int(r) for _, r in refs] + [int(r) for r in _ROW_REF.findall(data)],
                          default=0)
        else:  # at most AZ × 99,999 cells: within MAX_CELLS without looking closer
            max_col = max_row = 0
        if max_col >= MAX_COLUMNS or max_row * (max_col + 1) > MAX_CELLS \
                or max_row > 1_048_576:
            far = self._far_cell(data)
            raise UnreadableWorkbook(
                f"{self.path.name}: sheet {self.name!r} uses cell {far}, far outside any KPI "
                f"table (kpireport reads up to column {address(0, MAX_COLUMNS - 1)[:-1]} and "
                f"{MAX_CELLS:,} cells a sheet); delete the stray cells and save again")
        if not any(marker in data for marker in _PARSE_MARKERS):
            return _SheetScan({}, set())
        return self._parse_formulas(data)

    def _far_cell(self, data: bytes) -> str:
        best = (0, 0)
        for col, row in _CELL_REF.findall(data):
            key = (column_index(col.decode()), int(row))
            best = max(best, key, key=lambda k: (k[0] + 1) * k[1])
        return f"{column_letter(best[0])}{best[1]}" if best != (0, 0) else "?"

    def _parse_formulas(self, data: bytes) -> _SheetScan:
        errors: dict[tuple[int, int], str] = {}
        uncached: set[tuple[int, int]] = set()
        root = _parse_xml(self.path, self.info.filename, data)
        row_no, col_no = 0, -1
        for element in root.iter():
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "row":
                row_no = int(element.get("r", row_no + 1))
                col_no = -1
            elif tag == "c":
                ref = element.get("r")
                if ref:
                    letters = ref.rstrip("0123456789")
                    col_no = column_index(letters)
                    row_no = int(ref[len(letters):])
                else:
                    col_no += 1
                children = {c.tag.rsplit("}", 1)[-1]: c for c in element}
                value = children.get("v")
                has_value = value is not None and (value.text or "") != "" or "is" in children
                key = (row_no - 1, col_no)
                if element.get("t") == "e" and value is not None:
                    errors[key] = value.text or "#ERROR"
                elif "f" in children and not has_value and element.get("t") != "str":
                    uncached.add(key)
                elif "f" in children and not has_value and element.get("t") == "str" \
                        and value is None:
                    uncached.add(key)
        return _SheetScan(errors, uncached)


def _read_sheets(path: Path, archive: zipfile.ZipFile,
                 parts: dict[str, zipfile.ZipInfo]) -> list[RawSheet]:
    """Scan each sheet, then let calamine read it in a thread while the next one is scanned.

    Calamine is Rust and releases the GIL, so the scans (Python) and the reading overlap; a
    sheet is handed to calamine only after its scan has bounded its extent.
    """
    # lazy: python_calamine is loaded only where it is used (start-up stays light)
    import python_calamine

    try:
        book = python_calamine.CalamineWorkbook.from_path(str(path))
    except python_calamine.PasswordError:
        raise UnreadableWorkbook(f"{path.name}: the workbook is password-protected") from None
    except Exception as exc:  # calamine's errors share no base class worth naming
        raise UnreadableWorkbook(f"{path.name}: cannot be read as a workbook ({exc})") from None
    with book, ThreadPoolExecutor(max_workers=1, thread_name_prefix="calamine") as pool:
        pending = []
        try:
            for meta in book.sheets_metadata:
                info = parts.get(meta.name)
                if info is None:
                    continue  # chart sheets and dialog sheets hold no cells
                scan = _SheetScanner(path, meta.name, info).scan(archive)
                pending.append((meta, scan, pool.submit(_calamine_sheet, path, book, meta.name)))
            sheets = []
            for meta, scan, future in pending:
                rows, merged = future.result()
                hidden = str(meta.visible).rsplit(".", 1)[-1] != "Visible"
                sheets.append(RawSheet(meta.name, rows, hidden, scan.errors, scan.uncached,
                                       merged))
        except BaseException:
            for *_, future in pending:
                future.cancel()
            raise
    return sheets


def _calamine_sheet(path: Path, book, name: str) -> tuple[list[list[object]], list[str]]:
    try:
        sheet = book.get_sheet_by_name(name)
        rows = sheet.to_python(skip_empty_area=False)
        merged = [_range_a1(r) for r in (sheet.merged_cell_ranges or [])]
    except Exception as exc:
        raise UnreadableWorkbook(f"{path.name}: sheet {name!r} cannot be read ({exc})") from None
    return rows, merged


def _range_a1(cells) -> str:
    (r1, c1), (r2, c2) = cells
    return f"{address(r1, c1)}:{address(r2, c2)}"
