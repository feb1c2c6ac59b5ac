"""Writing a build's files so that readers never see half a file and failures change nothing.

Files are written to a staging folder beside the run folder; only when every file of the build
is ready are they moved into place, each with an atomic ``os.replace``. A failed build removes
its staging folder and leaves the previous build's files as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from kpireport.errors import OutputError

CACHE_FILE = ".kpireport-cache.json"


class Staging:
    """Collects a build's files, then commits them into ``run_dir`` at once."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        try:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.staging-",
                                             dir=run_dir.parent))
        except OSError as exc:
            raise OutputError(f"cannot write to {run_dir.parent}: {exc.strerror or exc}") from None
        self.names: list[str] = []

    def write(self, name: str, data: bytes) -> None:
        path = self.dir / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as exc:
            raise OutputError(f"cannot write {name}: {exc.strerror or exc}") from None
        self.names.append(name)

    def commit(self, keep: set[str] = frozenset()) -> list[Path]:  # type: ignore[assignment]
        """Move every staged file into place; remove report files of the previous build that
        this build neither wrote nor kept."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            written = []
            for name in self.names:
                final = self.run_dir / name
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.dir / name, final)
                written.append(final)
            current = set(self.names) | set(keep)
            for folder in ("employees", "departments"):
                for stale in (self.run_dir / folder).glob("*"):
                    if f"{folder}/{stale.name}" not in current and stale.suffix in (".html",
                                                                                    ".pdf"):
                        stale.unlink()
        except OSError as exc:
            raise OutputError(f"cannot write the reports into {self.run_dir}: "
                              f"{exc.strerror or exc}") from None
        finally:
            self.discard()
        return written

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def read_cache(run_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((run_dir / CACHE_FILE).read_text())
        return {str(k): str(v) for k, v in data.get("reports", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def cache_bytes(keys: dict[str, str]) -> bytes:
    return json.dumps({"reports": dict(sorted(keys.items()))}, indent=0).encode()
