"""Uploaded workbooks, by the name people gave them, and their versions.

An upload of ``team.xlsx`` is kept as ``.kpireport-web/books/<key>/v1/team.xlsx``; the next
upload of ``team.xlsx`` with other contents becomes ``v2/team.xlsx`` of the same workbook, and
so does the laid-out copy ``prepare`` makes. The file keeps the name it was uploaded as, so the
command a page shows builds reports that name the same workbook; the web app also passes the
name to the build (``api.load(…, source_name=…)``), which is what every page, report footer and
e-mail shows. ``<key>/workbook.json`` lists the versions with how each came (an upload, a fixed
marked copy, ``prepare``), its SHA-256 and its check state. An upload identical to the latest
version is that version, not a new one.

A run names its workbook and SHA-256 (``results.json``, ``manifest.json``); the version it came
from is the latest one with that SHA-256 (:meth:`Library.version_of`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from kpireport.core.errors import OutputError
from kpireport.core.files import write_atomically
from kpireport.web.errors import PageError
from kpireport.web.labels import _ as N_
from kpireport.web.security import safe_stem

INDEX = "workbook.json"
SCHEMA = "kpireport/web-workbook@1"
# Names a workbook may be shown with: letters of any script, digits, space . _ ( ) -
SHOWN_NAME = re.compile(r"^[^\W_][\w .()\-]{0,150}\.xlsx$")
MARKED = re.compile(r"\.checked(?=\.xlsx$)", re.IGNORECASE)


@dataclass(frozen=True)
class Version:
    """One stored copy of a workbook."""

    number: int
    file: str  # relative to the workbook's folder: v<N>/<name>
    sha256: str
    added: str  # ISO 8601, UTC
    origin: str  # upload / marked copy / prepare / sample
    errors: int
    warnings: int

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Workbook:
    """A workbook by the name it was uploaded as, with every version of it."""

    name: str
    folder: Path
    versions: tuple[Version, ...]

    @property
    def latest(self) -> Version:
        return self.versions[-1]

    def version(self, number: int | None) -> Version | None:
        if number is None:
            return self.latest
        return next((v for v in self.versions if v.number == number), None)

    def path(self, version: Version) -> Path:
        return self.folder / version.file


def shown_name(filename: str) -> str:
    """The name an uploaded file is known by: its own (without folders), ``team.xlsx`` for the
    marked copy ``team.checked.xlsx`` kpireport gave out, ``upload.xlsx`` for a name that
    cannot be shown safely."""
    name = Path(filename.replace("\\", "/")).name.strip()
    stem, dot, suffix = name.rpartition(".")
    if dot and suffix.lower() == "xlsx":
        name = f"{stem}.xlsx"
    name = MARKED.sub("", name)
    return name if SHOWN_NAME.match(name) else "upload.xlsx"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


class Library:
    """The uploaded workbooks under ``root`` (``FOLDER/.kpireport-web/books``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def all(self) -> list[Workbook]:
        if not self.root.is_dir():
            return []
        found = (self._read(folder) for folder in sorted(self.root.iterdir())
                 if not folder.is_symlink() and folder.is_dir())
        return [w for w in found if w is not None]

    def get(self, name: str) -> Workbook | None:
        folder = self.root / _key(name)
        book = self._read(folder) if folder.is_dir() and not folder.is_symlink() else None
        return book if book is not None and book.name == name else None

    def file(self, name: str, version: int | None) -> Path | None:
        """The file of a version of ``name`` (the latest by default); None when ``name`` was
        never uploaded or ``version`` is 0 (the file of that name in the folder)."""
        book = self.get(name)
        if book is None or version == 0:
            return None
        found = book.version(version)
        if found is None:
            raise PageError(404, N_("No version {version} of {name}."), version=version,
                            name=name)
        return book.path(found)

    def add(self, name: str, file: Path, *, origin: str, errors: int,
            warnings: int) -> tuple[Workbook, Version, bool]:
        """Keep ``file`` (moved) as the next version of ``name``; (workbook, version, new):
        a file identical to the latest version is that version (``new`` False)."""
        sha256 = sha256_of(file)
        with self._lock:
            book = self.get(name)
            if book is not None and book.latest.sha256 == sha256:
                file.unlink(missing_ok=True)
                return book, book.latest, False
            versions = book.versions if book is not None else ()
            folder = self.root / _key(name)
            number = versions[-1].number + 1 if versions else 1
            relative = f"v{number}/{name}"
            try:
                (folder / f"v{number}").mkdir(parents=True, exist_ok=True)
                os.replace(file, folder / relative)
            except OSError as exc:
                raise OutputError(f"cannot keep the upload {name}: {exc.strerror or exc}") \
                    from None
            version = Version(number, relative, sha256, _now(), origin, errors, warnings)
            book = Workbook(name, folder, (*versions, version))
            write_atomically(folder / INDEX, _index_bytes(book))
            return book, version, True

    def version_of(self, name: str, sha256: str) -> tuple[Workbook, Version] | None:
        """The latest version of ``name`` with these contents (the one a run was built from)."""
        book = self.get(name)
        if book is None:
            return None
        found = [v for v in book.versions if v.sha256 == sha256]
        return (book, found[-1]) if found else None

    @staticmethod
    def _read(folder: Path) -> Workbook | None:
        try:
            data = json.loads((folder / INDEX).read_text(encoding="utf-8"))
            if data.get("schema") != SCHEMA or not SHOWN_NAME.match(data["name"]):
                return None
            versions = tuple(Version(**v) for v in data["versions"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # not ours, or damaged: not listed
        if not versions or any(Path(v.file).parts != (f"v{v.number}", data["name"])
                               for v in versions):
            return None
        return Workbook(data["name"], folder, versions)


def copy_of(book: Workbook, version: Version, into: Path) -> Path:
    """A working copy of a version in ``into`` (for prepare), under the workbook's name."""
    target = into / book.name
    shutil.copyfile(book.path(version), target)
    return target


def _key(name: str) -> str:
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    return f"{safe_stem(name)}-{digest}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _index_bytes(book: Workbook) -> bytes:
    document = {"schema": SCHEMA, "name": book.name,
                "versions": [asdict(v) for v in book.versions]}
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"


def workbook_rows(stored: list[Workbook], in_folder: list[dict]) -> list[dict]:
    """The home page's rows: each uploaded workbook once (with how many versions and the
    latest one's check state), then the folder's own files; a file in the folder with the name
    of an uploaded workbook is one more version of it (version 0), not a row of its own."""
    by_name = {b["name"]: b for b in in_folder}
    rows = []
    for book in stored:
        latest = book.latest
        also = by_name.pop(book.name, None)
        rows.append({"name": book.name, "versions": len(book.versions) + (also is not None),
                     "version": latest.number, "errors": latest.errors,
                     "warnings": latest.warnings, "checked": True,
                     "modified": _local(latest.added), "size": _size(book.path(latest)),
                     "unavailable": None})
    rows.sort(key=lambda r: r["modified"], reverse=True)
    folder_rows = sorted(by_name.values(), key=lambda b: b["modified"], reverse=True)
    return rows + [{**b, "versions": 1, "version": 0, "checked": False} for b in folder_rows]


def version_rows(book: Workbook | None, folder_file: Path | None) -> list[dict]:
    """The check page's list: every version, newest first; the folder's own file of that name
    (not checked until opened) last."""
    rows = []
    for version in reversed(book.versions if book is not None else ()):
        rows.append({"number": version.number, "origin": version.origin,
                     "added": _local(version.added), "errors": version.errors,
                     "warnings": version.warnings, "checked": True,
                     "sha256": version.sha256[:12]})
    if folder_file is not None and folder_file.is_file():
        rows.append({"number": 0, "origin": "folder", "checked": False, "errors": 0,
                     "warnings": 0, "sha256": "",
                     "added": dt.datetime.fromtimestamp(folder_file.stat().st_mtime)})
    return rows


def _local(stamp: str) -> dt.datetime:
    """An index time as this computer's local time (what the rest of the pages show)."""
    return dt.datetime.fromisoformat(stamp).astimezone().replace(tzinfo=None)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
