"""The manifest of a build: every file of a run folder, what it is and its content hash.

``build`` writes ``RUN_DIR/manifest.json`` with the rest of the run folder (it is swapped in
together, so it always describes the files beside it). Everything after the build — ``send``,
the Dask path, ``diff``, ``approve``, ``status``, the web app — reads the reports from here
instead of deriving file names or probing the folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kpireport.core.errors import KpireportError

MANIFEST_FILE = "manifest.json"
SCHEMA = "kpireport/manifest@1"
REPORT_KINDS = ("company", "department", "employee", "index")
# The formats of a report's files, in the order they are listed.
FILE_FORMATS = ("html", "pdf", "archive")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileEntry:
    """One file of the run folder: its path relative to the folder (posix), hash and size."""

    path: str
    sha256: str
    size: int

    def as_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class ReportEntry:
    """One report: what it is about and its files by format (html, pdf, archive)."""

    kind: str
    scope: str
    name: str
    department: str | None
    stem: str
    files: tuple[tuple[str, FileEntry], ...] = ()

    def file(self, fmt: str) -> FileEntry | None:
        return next((f for name, f in self.files if name == fmt), None)

    @property
    def pdf(self) -> FileEntry | None:
        return self.file("pdf")

    @property
    def html(self) -> FileEntry | None:
        return self.file("html")

    def as_dict(self) -> dict:
        return {"kind": self.kind, "scope": self.scope, "name": self.name,
                "department": self.department, "stem": self.stem,
                "files": {fmt: f.as_dict() for fmt, f in self.files}}


@dataclass(frozen=True)
class Manifest:
    """What a build wrote into ``run_dir``; see :func:`read_manifest`."""

    period: str
    run_dir: Path
    built_at: str
    kpireport_version: str
    workbook_file: str
    workbook_sha256: str
    formats: tuple[str, ...]
    reports: tuple[ReportEntry, ...]
    data: tuple[FileEntry, ...]
    schema: str = SCHEMA
    _by_scope: Mapping = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_scope", {(r.kind, r.scope): r for r in self.reports})

    def report(self, kind: str, scope: str) -> ReportEntry | None:
        return self._by_scope.get((kind, scope))

    def data_file(self, name: str) -> FileEntry | None:
        return next((f for f in self.data if f.path == name), None)

    def files(self) -> Iterable[FileEntry]:
        yield from self.data
        for report in self.reports:
            for _fmt, entry in report.files:
                yield entry

    def hashes(self) -> dict[str, str]:
        """Every file's path → sha256 (results files and reports)."""
        return {f.path: f.sha256 for f in self.files()}

    def path(self, entry: FileEntry) -> Path:
        return self.run_dir / entry.path

    def verify(self) -> list[str]:
        """The paths whose bytes on disk are missing or differ from the manifest."""
        changed = []
        for entry in self.files():
            try:
                data = (self.run_dir / entry.path).read_bytes()
            except OSError:
                changed.append(entry.path)
                continue
            if len(data) != entry.size or sha256(data) != entry.sha256:
                changed.append(entry.path)
        return changed

    def as_dict(self) -> dict:
        return {"schema": self.schema, "period": self.period, "built_at": self.built_at,
                "kpireport_version": self.kpireport_version,
                "workbook": {"file": self.workbook_file, "sha256": self.workbook_sha256},
                "formats": list(self.formats),
                "data": [f.as_dict() for f in self.data],
                "reports": [r.as_dict() for r in self.reports]}

    def to_bytes(self) -> bytes:
        # lazy: orjson is loaded only where it is used (start-up stays light)
        import orjson

        return orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2)


def read_manifest(run_dir: str | Path) -> Manifest:
    """The manifest of ``run_dir``; a KpireportError naming the folder when it has none."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not run_dir.is_dir():
            raise KpireportError(f"{run_dir} is not a folder; give a run folder such as "
                                 "reports/2026-10") from None
        raise KpireportError(f"{run_dir} is not a run folder (no {MANIFEST_FILE}); build "
                             "the reports first") from None
    except (OSError, ValueError) as exc:
        raise KpireportError(f"{path}: unreadable ({exc}); build again") from None
    try:
        return from_dict(document, run_dir)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KpireportError(f"{path}: damaged ({exc!r}); build again") from None


def from_dict(document: dict, run_dir: Path) -> Manifest:
    schema = document["schema"]
    if not isinstance(schema, str) or not schema.startswith("kpireport/manifest@"):
        raise ValueError(f"not a kpireport manifest: {schema!r}")

    def entry(d: dict) -> FileEntry:
        return FileEntry(str(d["path"]), str(d["sha256"]), int(d["size"]))

    reports = tuple(
        ReportEntry(str(r["kind"]), str(r["scope"]), str(r["name"]),
                    None if r.get("department") is None else str(r["department"]),
                    str(r["stem"]),
                    tuple((fmt, entry(f)) for fmt, f in r["files"].items()))
        for r in document["reports"])
    return Manifest(period=str(document["period"]), run_dir=run_dir,
                    built_at=str(document["built_at"]),
                    kpireport_version=str(document["kpireport_version"]),
                    workbook_file=str(document["workbook"]["file"]),
                    workbook_sha256=str(document["workbook"]["sha256"]),
                    formats=tuple(document["formats"]), reports=reports,
                    data=tuple(entry(d) for d in document["data"]), schema=schema)


class Hasher:
    """The hashes of a staged build's files: from the bytes written, else read from disk (a
    report taken over from the previous build is hashed again: its file could have been edited
    since, and the manifest must describe the bytes beside it)."""

    def __init__(self, staging_dir: Path) -> None:
        self.dir = staging_dir
        self.known: dict[str, FileEntry] = {}

    def written(self, name: str, data: bytes) -> None:
        self.known[name] = FileEntry(name, sha256(data), len(data))

    def entry(self, name: str) -> FileEntry | None:
        if name in self.known:
            return self.known[name]
        try:
            data = (self.dir / name).read_bytes()
        except OSError:
            return None
        return FileEntry(name, sha256(data), len(data))
