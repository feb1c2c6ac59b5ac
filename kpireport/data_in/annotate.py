"""``kpireport check BOOK --annotate``: the issues written back into a copy of the workbook.

Every cell with an error is filled red, every cell with a warning amber, and each carries a
note with the message and the fix. A first sheet ``Issues`` lists every issue with a link to
its cell. The original workbook is never written. What a cell looked like before it was
marked (its fill and any note of its own) is kept in a hidden column of the Issues sheet, so
annotating an annotated copy again first restores every cell, then marks what is still wrong.
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kpireport.core.catalogue import fix_for
from kpireport.core.errors import KpireportError, OutputError
from kpireport.core.files import replacing
from kpireport.core.issues import Issue
from kpireport.core.spec import normalise

ISSUES_SHEET = "Issues"
NOTE_AUTHOR = "kpireport check"
RESTORE_HEADER = "kpireport-restore"
FILLS = {"error": "FFFFC7CE", "warning": "FFFFE699"}  # light red, amber
HEADER = ("#", "severity", "code", "sheet", "cell", "message", "fix", RESTORE_HEADER)
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_A1 = re.compile(r"^\$?([A-Z]{1,3})\$?(\d{1,7})$")


@dataclass(frozen=True)
class AnnotateResult:
    out: Path
    marked: int  # cells filled and noted
    listed: int  # rows of the Issues sheet
    cleared: int  # old marks removed first
    not_kept: list[str]  # parts openpyxl cannot write back
    kept: Path | None = None  # an edited earlier copy, moved aside instead of overwritten


def default_output(book: Path) -> Path:
    return book.with_name(f"{book.stem}.checked{book.suffix or '.xlsx'}")


def annotate_workbook(book: Path, issues: list[Issue], out: Path | None = None
                      ) -> AnnotateResult:
    """Write a marked copy of ``book`` to ``out`` (default ``BOOK.checked.xlsx``)."""
    book, out = Path(book), Path(out) if out is not None else default_output(Path(book))
    if out.suffix.lower() != ".xlsx":
        raise KpireportError(f"{out.name}: the annotated copy must be an .xlsx file")
    if out.exists() and out.resolve() == book.resolve():
        raise KpireportError(f"{out.name}: the annotated copy cannot replace the workbook "
                             "itself; name another file")
    if not out.parent.is_dir():
        raise OutputError(f"cannot write {out}: the folder does not exist")
    workbook, not_kept = load_for_editing(book)
    old_sheets = [ws.title for ws in workbook.worksheets if _is_ours(ws)]
    cleared = _clear_old_marks(workbook)
    # The previous Issues sheet is gone from the copy: its "unknown sheet" note goes too.
    issues = [i for i in issues if not (i.code == "unknown-sheet" and i.sheet in old_sheets)]
    marked, restore = _mark_cells(workbook, issues)
    listed = _issues_sheet(workbook, issues, restore)
    workbook.properties.lastModifiedBy = NOTE_AUTHOR
    kept = None
    if out.exists() and _saved_by_someone_else(out):
        # Someone fixed cells in the last annotated copy: it is not overwritten unseen.
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.data_in.prepare import _backup

        kept = _backup(out)
    save_atomically(workbook, out)
    return AnnotateResult(out, marked, listed, cleared, not_kept, kept)


def unmark_workbook(path: Path) -> int:
    """Take kpireport's own marks off a workbook in place (a fixed copy of the annotated one,
    uploaded again): the Issues sheet goes and each marked cell gets back the fill and note it
    had before; the user's own formatting and notes stay. How many marks came off (0: the
    file had none and was not rewritten)."""
    path = Path(path)
    if not _has_marks(path):
        return 0
    workbook, _ = load_for_editing(path)
    cleared = _clear_old_marks(workbook)
    if cleared or any(_is_ours(ws) for ws in workbook.worksheets):
        save_atomically(workbook, path)
    return cleared


def _has_marks(path: Path) -> bool:
    """Whether the file carries an Issues sheet or a note of ours (a look inside the zip,
    without opening the workbook)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name == "xl/sharedStrings.xml" or name.startswith(("xl/worksheets/sheet",
                                                                     "xl/comments")):
                    data = archive.read(name)
                    if RESTORE_HEADER.encode() in data or NOTE_AUTHOR.encode() in data:
                        return True
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return False


def _saved_by_someone_else(path: Path) -> bool:
    """Excel and LibreOffice record who saved a file last; our copies say kpireport check."""
    try:
        with zipfile.ZipFile(path) as archive:
            core = archive.read("docProps/core.xml")
    except (OSError, KeyError, zipfile.BadZipFile):
        return True  # not one of our copies at all
    match = re.search(rb"<cp:lastModifiedBy>([^<]*)</cp:lastModifiedBy>", core)
    return match is None or match.group(1).decode("utf-8", "replace") != NOTE_AUTHOR


# ---------------------------------------------------------------------------- marks
def _sheet_by_name(workbook, name: str):
    if name in workbook.sheetnames:
        return workbook[name]
    key = normalise(name)
    return next((ws for ws in workbook.worksheets if normalise(ws.title) == key), None)


def _cell_ref(issue: Issue) -> str | None:
    match = _A1.match(issue.cell.strip().upper()) if issue.cell else None
    return f"{match.group(1)}{match.group(2)}" if match else None


def _mark_cells(workbook, issues: list[Issue]) -> tuple[int, dict[tuple[str, str], str]]:
    """Fill and note each cell with errors or warnings; what it looked like before, as JSON."""
    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.comments import Comment

    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.styles import PatternFill

    by_cell: dict[tuple[str, str], list[Issue]] = {}
    for issue in issues:
        ws = _sheet_by_name(workbook, issue.sheet) if issue.sheet else None
        ref = _cell_ref(issue)
        if ws is None or ref is None or issue.severity not in FILLS:
            continue
        by_cell.setdefault((ws.title, ref), []).append(issue)
    restore: dict[tuple[str, str], str] = {}
    for (title, ref), found in by_cell.items():
        cell = workbook[title][ref]
        if type(cell).__name__ == "MergedCell":
            continue  # only the top-left cell of a merged range can hold a note
        restore[(title, ref)] = json.dumps(
            {"fill": _fill_state(cell.fill),
             "note": [cell.comment.text, cell.comment.author] if cell.comment else None},
            ensure_ascii=False)
        worst = min(found, key=lambda i: _SEVERITY_ORDER[i.severity]).severity
        cell.fill = PatternFill("solid", fgColor=FILLS[worst], bgColor=FILLS[worst])
        text = f"{NOTE_AUTHOR}:\n" + "\n\n".join(
            f"{i.severity.upper()} ({i.code}): {i.message}\nFix: {fix_for(i.code)}"
            for i in found)
        if cell.comment is not None and not _our_note(cell):
            text += f"\n\n— earlier note —\n{cell.comment.text}"
        note = Comment(text, NOTE_AUTHOR)
        note.width, note.height = 320, min(60 + 60 * len(found), 400)
        cell.comment = note
    return len(restore), restore


def _fill_state(fill) -> dict | None:
    if fill is None or fill.fill_type is None:
        return None

    def colour(value) -> dict | None:
        if value is None:
            return None
        return {"type": value.type, "value": value.value, "tint": value.tint}

    return {"type": fill.fill_type, "fg": colour(fill.fgColor), "bg": colour(fill.bgColor)}


def _restore_fill(state: dict | None):
    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.styles import PatternFill

    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.styles.colors import Color

    if not state:
        return PatternFill(fill_type=None)

    def colour(value: dict | None):
        if not value:
            return Color()
        return Color(**{value["type"]: value["value"]}, tint=value.get("tint") or 0.0)

    return PatternFill(state["type"], fgColor=colour(state.get("fg")),
                       bgColor=colour(state.get("bg")))


def _clear_old_marks(workbook) -> int:
    """Remove a previous run's Issues sheet and restore the cells it marked."""
    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.comments import Comment

    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.styles import PatternFill

    cleared = 0
    for ws in list(workbook.worksheets):
        if not _is_ours(ws):
            continue
        for row in ws.iter_rows(min_row=2, values_only=True):
            sheet, ref, state = row[3], row[4], row[7] if len(row) > 7 else None
            target = workbook[sheet] if sheet in workbook.sheetnames else None
            if target is None or not ref or not state:
                continue
            cell = target[ref]
            saved = json.loads(state)
            # What the user changed by hand since (a note or fill of their own) stays.
            if _our_fill(cell):
                cell.fill = _restore_fill(saved["fill"])
            if _our_note(cell):
                cell.comment = Comment(*saved["note"]) if saved["note"] else None
            cleared += 1
        workbook.remove(ws)
    # Marks whose record was lost (the Issues sheet deleted by hand): our notes and fills go.
    for ws in workbook.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if _our_note(cell):
                    if _our_fill(cell):
                        cell.fill = PatternFill(fill_type=None)
                    cell.comment = None
                    cleared += 1
    return cleared


def _our_note(cell) -> bool:
    # LibreOffice drops a note's author when it saves; the first line says whose it is.
    return cell.comment is not None and (cell.comment.author == NOTE_AUTHOR
                                         or cell.comment.text.startswith(NOTE_AUTHOR + ":"))


def _our_fill(cell) -> bool:
    rgb = cell.fill.fgColor.rgb if cell.fill is not None and cell.fill.fill_type else None
    return isinstance(rgb, str) and rgb[-6:] in {colour[-6:] for colour in FILLS.values()}


def _is_ours(ws) -> bool:
    return ws.max_column >= len(HEADER) and ws.cell(1, len(HEADER)).value == RESTORE_HEADER


# ---------------------------------------------------------------------------- Issues sheet
def _issues_sheet(workbook, issues: list[Issue], restore: dict[tuple[str, str], str]) -> int:
    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.styles import Alignment, Font, PatternFill

    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.worksheet.hyperlink import Hyperlink

    title = ISSUES_SHEET if ISSUES_SHEET not in workbook.sheetnames else "kpireport Issues"
    ws = workbook.create_sheet(title, 0)
    ws.append(list(HEADER))
    bold = Font(bold=True, color="FFFFFFFF")
    for cell in ws[1]:
        cell.font, cell.fill = bold, PatternFill("solid", fgColor="FF305496")
    ordered = sorted(issues, key=lambda i: _SEVERITY_ORDER.get(i.severity, 3))
    link_font = Font(color="FF0563C1", underline="single")
    wrap = Alignment(wrap_text=True, vertical="top")
    for number, issue in enumerate(ordered, start=1):
        target = _sheet_by_name(workbook, issue.sheet) if issue.sheet else None
        ref = _cell_ref(issue)
        sheet_title = target.title if target is not None else issue.sheet
        saved = restore.pop((sheet_title, ref), None) if ref else None
        ws.append([number, issue.severity, issue.code, sheet_title, ref or "", issue.message,
                   fix_for(issue.code), saved])
        row = ws.max_row
        for column in (2, 3, 4, 5, 6, 7):
            ws.cell(row, column).data_type = "s"  # workbook text never becomes a formula
            ws.cell(row, column).alignment = wrap
        if issue.severity in FILLS:
            ws.cell(row, 2).fill = PatternFill("solid", fgColor=FILLS[issue.severity])
        if target is not None:
            link = ws.cell(row, 5 if ref else 4)
            if not ref:
                link.value = sheet_title
            quoted = "'" + target.title.replace("'", "''") + "'"
            link.hyperlink = Hyperlink(ref=link.coordinate, location=f"{quoted}!{ref or 'A1'}",
                                       display=str(link.value))
            link.font = link_font
    for letter, width in zip("ABCDEFGH", (5, 9, 24, 14, 8, 60, 45, 10)):
        ws.column_dimensions[letter].width = width
    ws.column_dimensions["H"].hidden = True
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:G{max(ws.max_row, 2)}"
    for sheet in workbook.worksheets:
        sheet.sheet_view.tabSelected = False
    ws.sheet_view.tabSelected = True
    workbook.active = 0
    return len(ordered)


# ---------------------------------------------------------------------------- shared helpers
def recalculate_on_open(workbook) -> None:
    """openpyxl keeps formulas but not their last values: Excel and LibreOffice recompute
    them when the file is opened."""
    if workbook.calculation is not None:
        workbook.calculation.fullCalcOnLoad = True


def load_for_editing(path: Path):
    """The workbook opened with openpyxl, and what saving it again would not keep (in words)."""

    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl import load_workbook

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            workbook = load_workbook(path)
        except Exception as exc:  # openpyxl raises many types for damaged files
            raise KpireportError(f"{path.name}: cannot be opened for editing ({exc})") from None
    lost = []
    for warning in caught:
        text = str(warning.message)
        if "will be removed" in text or "not supported" in text:
            what = text.split(" is not supported")[0].split(" will be removed")[0].strip()
            lost.append(_LOST_WORDS.get(what, what))
    lost.extend(_unread_parts(path))
    return workbook, sorted(set(lost))


_LOST_WORDS = {
    "Data Validation extension": "drop-down lists that point at other sheets (Excel 2010 "
                                 "style)",
    "Conditional Formatting extension": "Excel 2010 conditional formats (data bars, icons)",
    "Unknown extension": "Excel extensions (e.g. sparklines, slicers)",
}


def _unread_parts(path: Path) -> list[str]:
    """Parts of the file openpyxl drops without a warning."""
    found = []
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            drawings = [archive.read(n) for n in names
                        if n.startswith("xl/drawings/drawing") and n.endswith(".xml")]
    except (OSError, zipfile.BadZipFile):
        return found
    shapes = sum(d.count(b"<xdr:sp>") + d.count(b"<xdr:sp ") for d in drawings)
    if shapes:
        found.append(f"{shapes} shape(s) or text box(es)")
    if any(n.startswith(("xl/slicers/", "xl/slicerCaches/", "xl/timelines/")) for n in names):
        found.append("slicers and timelines")
    if "xl/vbaProject.bin" in names:
        found.append("macros")
    return found


def save_atomically(workbook, path: Path) -> None:

    recalculate_on_open(workbook)
    try:
        with replacing(path) as temporary:
            workbook.save(temporary)
    except OSError as exc:
        raise OutputError(f"cannot save {path}: {exc.strerror or exc}") from None
