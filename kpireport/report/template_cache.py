"""Compiled report templates kept between builds: Jinja's bytecode cache, made safe.

The build's template check and its renderer share one compilation in memory, and the next
process loads it from the user's cache folder instead of compiling again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path

from kpireport.core.files import write_atomically
from kpireport.core.i18n import translations
from kpireport.core.version import __version__

# Compiled templates, by cache namespace and Jinja's key, for the life of the process: the
# build's template check and its renderer share one compilation.
_COMPILED: dict[str, bytes] = {}


def cache_folder() -> Path | None:
    """The user's folder for kpireport's compiled templates (created private), or None where
    it cannot be used safely: ``$KPIREPORT_CACHE_DIR``, else ``$XDG_CACHE_HOME/kpireport``,
    else ``~/.cache/kpireport``; ``KPIREPORT_CACHE_DIR=off`` keeps them in memory only.

    Compiled templates are code that the renderer runs, so the folder must be a real folder
    owned by this user that nobody else can write to; anything else is not used.
    """

    configured = os.environ.get("KPIREPORT_CACHE_DIR")
    if configured == "off" or not hasattr(os, "getuid"):
        return None
    if configured:
        root = Path(configured)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache") / "kpireport"
    folder = root / "templates"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except (OSError, RuntimeError):  # RuntimeError: no home folder
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() \
            or stat.S_IMODE(info.st_mode) & 0o022:
        return None
    return folder


def _cache_namespace(locale: str, fast_paths: bool) -> str:
    """What a compiled template depends on besides its source (which Jinja checks itself):
    the versions, this module's code generator and extensions, and the locale's translations
    (``_("literal")`` is translated into the compiled code)."""
    # lazy: jinja2 is loaded only where it is used (start-up stays light)
    import jinja2

    catalog = sorted(getattr(translations(locale), "_catalog", {}).items(), key=repr)
    digest = hashlib.sha256(repr((__version__, jinja2.__version__, locale, fast_paths,
                                  catalog)).encode())
    digest.update((Path(__file__).parent / "render.py").read_bytes())
    return digest.hexdigest()[:32]


def bytecode_cache(locale: str, fast_paths: bool):
    """Jinja's bytecode cache for the report environment: compiled templates in memory for
    the process and in :func:`cache_folder` for the next run (template compilation was a
    tenth of a cold HTML build of 1,000 people)."""
    # lazy: jinja2 is loaded only where it is used (start-up stays light)
    from jinja2.bccache import BytecodeCache

    namespace = _cache_namespace(locale, fast_paths)
    folder = cache_folder()

    class TemplateCache(BytecodeCache):
        def _file(self, key: str) -> Path | None:
            return folder / f"{namespace}-{key}.jinja" if folder is not None else None

        def load_bytecode(self, bucket) -> None:
            data = _COMPILED.get(namespace + bucket.key)
            path = self._file(bucket.key)
            if data is None and path is not None:
                try:
                    data = path.read_bytes()
                except OSError:
                    return
            if data is not None:
                bucket.bytecode_from_string(data)  # rejected if the source has changed

        def dump_bytecode(self, bucket) -> None:
            data = bucket.bytecode_to_string()
            _COMPILED[namespace + bucket.key] = data
            path = self._file(bucket.key)
            if path is None:
                return
            # written whole, then renamed: another build never reads half a file
            with contextlib.suppress(OSError):  # a cache that cannot be written is no cache
                write_atomically(path, data)

    return TemplateCache()
