"""Writing a build's run folder all at once, so readers never see half a build.

A build writes a complete new run folder beside the old one (``.2026-03.staging-…``): its own
files, the unchanged reports of the previous build (hard links, the render cache), and the files
that belong to the run rather than to one build (the send ledger, anything else not written by
``build``). Only then is it swapped in — one atomic ``renameat2(RENAME_EXCHANGE)`` on Linux, two
renames with rollback elsewhere — and the previous folder removed. A build that fails or is
killed anywhere before the swap leaves the previous run folder exactly as it was; the next build
removes what a killed one left behind (and puts a previous folder back if a kill fell between
the two renames of the fallback).

``build`` and ``send`` of one run folder exclude each other (and themselves) with a lock file
beside it, ``.2026-03.lock``: a second one is refused at once instead of interleaving.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kpireport.core.errors import OutputError
from kpireport.core.issues import Issue

if TYPE_CHECKING:
    from kpireport.report.manifest import Manifest
    from kpireport.score.results import Results

CACHE_FILE = ".kpireport-cache.json"
LEDGER = ".send-ledger.sqlite"  # kpireport.deliver.send: what was sent, per report and recipient
STAGING = ".staging-"
OLD = ".old-"
TRASH = ".trash-"  # a replaced build's folder being removed (never restored)
# What a build writes (everything else in a run folder is carried over to the next build).
# previous/ and sent/ (kpireport.month.cycle) are written or kept by the build's gate; audit.jsonl,
# .audit-head and the send ledger are carried over.
BUILD_FILES = frozenset({"results.json", "results.xlsx", "payroll.csv", "index.html",
                         "company.html", "company.pdf", "recipients.json", "manifest.json",
                         "inputs.json", CACHE_FILE})
BUILD_FOLDERS = frozenset({"employees", "departments", "archive", "previous", "sent"})


# ---------------------------------------------------------------------------- the run lock
@dataclass
class BuildResult:
    """What a build wrote: its run folder, results, files, and the reports that failed."""

    run_dir: Path
    results: Results
    written: list[Path]
    rendered: int
    cached: int
    failures: dict[str, str]
    issues: list[Issue]
    manifest: Manifest | None = None  # None when the build failed
    leftover: str | None = None  # what of the previous build's folder could not be removed

    @property
    def ok(self) -> bool:
        return not self.failures


class Busy(OutputError):
    """Another build or send holds the run folder."""


@contextlib.contextmanager
def run_lock(run_dir: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold the lock of ``run_dir`` (exclusive for build and send, shared for reading).

    The lock is an ``flock`` on ``.<name>.lock`` beside the run folder: the kernel releases it
    when the holder exits, however it exits, so a killed build or send never leaves it taken.
    """
    try:
        import fcntl  # lazy: POSIX only; elsewhere there is no locking (documented)
    except ImportError:
        yield
        return
    run_dir = Path(os.path.abspath(run_dir))
    path = run_dir.parent / f".{run_dir.name}.lock"
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+b")  # noqa: SIM115 (held for the with-block)
    except OSError as exc:
        if shared:  # only reading: a folder we cannot write in needs no lock
            yield
            return
        raise OutputError(f"cannot write in {run_dir.parent}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"{run_dir} is in use by another kpireport build or send; try again "
                       "when it has finished") from None
        yield
    finally:
        handle.close()


# ---------------------------------------------------------------------------- staging
class Staging:
    """A complete new run folder beside ``run_dir``, swapped in by :meth:`commit`.

    Hold :func:`run_lock` while staging: leftovers of other builds are removed on creation.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        clean_leftovers(run_dir)
        try:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}{STAGING}",
                                             dir=run_dir.parent))
        except OSError as exc:
            raise OutputError(f"cannot write to {run_dir.parent}: {exc.strerror or exc}") from None
        self.names: list[str] = []
        self.leftover: str | None = None  # what of the previous build could not be removed

    def write(self, name: str, data: bytes) -> None:
        write_file(self.dir, name, data, self.run_dir)
        self.names.append(name)

    def adopt(self, names) -> None:
        """Files written into the staging folder by :func:`write_file` elsewhere (a forked
        process), now part of this build."""
        self.names.extend(names)

    def keep(self, names: set[str]) -> None:
        """Take these files of the previous build over unchanged (hard links where possible)."""
        for name in sorted(names):
            self._carry(self.run_dir / name, self._path(name))
            self.names.append(name)

    def carry_over(self) -> None:
        """Take over what is not the build's: the send ledger, audit records, other files."""
        if not self.run_dir.is_dir():
            return
        written = set(self.names)
        for source in sorted(self.run_dir.rglob("*")):
            rel = source.relative_to(self.run_dir)
            if (source.is_dir() and not source.is_symlink()) or rel.parts[0] in BUILD_FOLDERS \
                    or (len(rel.parts) == 1 and rel.name in BUILD_FILES) \
                    or rel.as_posix() in written:
                continue
            self._carry(source, self.dir / rel)

    def _path(self, name: str) -> Path:
        return _inside(self.dir, name, self.run_dir)

    def _carry(self, source: Path, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                os.symlink(os.readlink(source), target)
                return
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
        except OSError as exc:
            raise OutputError(f"cannot copy {source} into the new build: "
                              f"{exc.strerror or exc}") from None

    def commit(self) -> list[Path]:
        """Swap the staged folder in for ``run_dir``, then remove the previous one.

        The previous folder is first renamed aside (``.2026-03.trash-…``), so whatever of it
        cannot be removed (a read-only folder, a file held open on Windows) never looks like a
        build in progress: :attr:`leftover` says what is left, in one line, and the next build
        of the period removes it (:func:`clean_leftovers`)."""
        old = None
        try:
            if self.run_dir.exists():
                old = _swap(self.dir, self.run_dir)
            else:
                os.rename(self.dir, self.run_dir)
        except OSError as exc:
            self.discard()
            raise OutputError(f"cannot put the new build in place of {self.run_dir}: "
                              f"{exc.strerror or exc}") from None
        if old is not None:  # the new build is in place: what follows only tidies up
            try:
                if old.name.startswith(f".{self.run_dir.name}{STAGING}"):
                    old = _set_aside(old, self.run_dir)
                self.leftover = remove_tree(old)
            except OSError as exc:
                self.leftover = (f"the previous build could not be removed from {old} "
                                 f"({exc.strerror or exc}); the next build of the period "
                                 "removes it")
        return [self.run_dir / name for name in self.names]

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def write_file(staging_dir: Path, name: str, data: bytes, run_dir: Path) -> None:
    """Write one file of the build of ``run_dir`` into its staging folder."""
    path = _inside(staging_dir, name, run_dir)
    try:
        try:
            path.write_bytes(data)
        except FileNotFoundError:  # its folder (employees/, departments/) is not there yet
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    except OSError as exc:
        raise OutputError(f"cannot write {name} for {run_dir}: {exc.strerror or exc}") from None


def _inside(folder: Path, name: str, run_dir: Path) -> Path:
    # Names come from kpireport.core.names; this is the last line of defence.
    if ".." in Path(name).parts or Path(name).is_absolute():
        raise OutputError(f"refusing to write {name!r} outside {run_dir}")
    return folder / name


def _swap(new: Path, current: Path) -> Path:
    """Put ``new`` at ``current``; return where the previous ``current`` now is."""
    if _exchange(new, current):
        return new
    old = Path(tempfile.mkdtemp(prefix=f".{current.name}{OLD}", dir=current.parent))
    os.rmdir(old)
    os.rename(current, old)
    try:
        os.rename(new, current)
    except OSError:
        os.rename(old, current)
        raise
    return old


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False where that is not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # kernel or file system without RENAME_EXCHANGE: use the fallback
    raise OSError(code, os.strerror(code), str(b))


def clean_leftovers(run_dir: Path) -> list[Path]:
    """Remove the staging folders of killed builds; restore a previous run folder that a kill
    between the fallback's two renames left aside. Call with :func:`run_lock` held."""
    parent = run_dir.parent
    if not parent.is_dir():
        return []
    olds = sorted(parent.glob(f".{run_dir.name}{OLD}*"), key=lambda p: p.stat().st_mtime)
    if olds and not run_dir.exists():
        os.rename(olds.pop(), run_dir)
    removed = olds + list(parent.glob(f".{run_dir.name}{STAGING}*")) \
        + list(parent.glob(f".{run_dir.name}{TRASH}*"))
    for path in removed:
        remove_tree(path)
    return removed


def _set_aside(folder: Path, run_dir: Path) -> Path:
    """Rename the previous build's folder (after the exchange it has the staging name) to
    ``.<period>.trash-…``: a leftover of it is then never taken for a build in progress, nor
    for a run folder to restore (``.old-`` is the fallback swap's)."""
    aside = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}{TRASH}", dir=run_dir.parent))
    os.rmdir(aside)
    try:
        os.rename(folder, aside)
    except OSError:
        return folder
    return aside


def remove_tree(folder: Path) -> str | None:
    """Remove ``folder`` and everything in it, making read-only folders writable first. None
    when it is gone; else one line naming what is left and why."""
    problems: list[str] = []

    top = os.path.abspath(folder)

    def writable(path: str) -> None:
        """Add the owner's rwx to a folder inside ``folder`` (never to anything outside it)."""
        path = os.path.abspath(path)
        if (path == top or path.startswith(top + os.sep)) and os.path.isdir(path) \
                and not os.path.islink(path):
            os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | stat.S_IRWXU)

    def retry(function, path, error) -> None:
        try:  # a read-only folder refuses to lose its entries: make it writable, try again
            writable(os.path.dirname(path))
            writable(path)
            function(path)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")

    for _ in range(2):  # a second pass reaches folders whose listing failed the first time
        if sys.version_info >= (3, 12):
            shutil.rmtree(folder, onexc=retry)
        else:
            shutil.rmtree(folder,
                          onerror=lambda function, path, info: retry(function, path, info[1]))
        if not os.path.lexists(folder):
            return None
    left = sum(len(files) for _, _, files in os.walk(folder))
    first = problems[0] if problems else "it is in use"
    return (f"{left} file(s) of the previous build could not be removed from {folder} "
            f"({first}); the next build of the period removes them")


# ---------------------------------------------------------------------------- render cache
def read_cache(run_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((run_dir / CACHE_FILE).read_text())
        return {str(k): str(v) for k, v in data.get("reports", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def cache_bytes(keys: dict[str, str]) -> bytes:
    return json.dumps({"reports": dict(sorted(keys.items()))}, indent=0).encode()
