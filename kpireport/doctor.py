"""``kpireport doctor``: what this machine has, what is missing, and what it costs."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    cost: str = ""  # what missing it costs


def diagnose() -> list[Finding]:
    """Look at the libraries and fonts kpireport relies on; import nothing heavy twice."""
    import warnings

    from kpireport.render import builtin_templates

    findings = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import weasyprint
            from weasyprint.text import ffi
        number = ffi.pango.pango_version()
        pango = f"{number // 10000}.{number // 100 % 100}.{number % 100}"
        findings.append(Finding("WeasyPrint", True, f"{weasyprint.__version__}, Pango {pango}"))
        subset = ffi.harfbuzz_subset is not None
        findings.append(Finding(
            "HarfBuzz subsetter (libharfbuzz-subset0)", subset,
            "found: fonts are subset in C" if subset else "missing: fonts are subset by "
            "fontTools in Python",
            "" if subset else "PDF output about 3x slower (measured 3.2x); apt-get install "
            "libharfbuzz-subset0"))
    except (OSError, ImportError) as exc:
        findings.append(Finding("WeasyPrint", False, f"cannot load: {exc}",
                                "no PDF reports; install Pango (apt-get install "
                                "libpango-1.0-0 libpangoft2-1.0-0)"))
    fonts = builtin_templates() / "fonts"
    needed = ["NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "KpiSymbols.ttf"]
    missing = [f for f in needed if not (fonts / f).exists()]
    findings.append(Finding("report fonts (shipped)", not missing,
                            "Noto Sans + KPI Symbols, embedded in every PDF" if not missing
                            else f"missing {', '.join(missing)}",
                            "" if not missing else "PDFs fall back to system fonts; "
                            "reinstall kpireport"))
    try:
        import lxml  # noqa: F401

        findings.append(Finding("lxml", True, "openpyxl writes templates with lxml"))
    except ImportError:
        findings.append(Finding("lxml", False, "missing", "init and prepare ~20% slower"))
    try:
        import distributed  # noqa: F401

        findings.append(Finding("Dask distributed (optional)", True, "build --dask works"))
    except ImportError:
        findings.append(Finding("Dask distributed (optional)", False, "not installed",
                                "no --dask; pip install 'kpireport[dask]'"))
    findings.append(Finding("CPU cores", True, f"{os.cpu_count()} (default --workers)"))
    for tool, use in (("pdftoppm", "tests: PDF to PNG"), ("chromium", "tests: HTML in a browser"),
                      ("soffice", "tests: LibreOffice round trip")):
        found = shutil.which(tool)
        findings.append(Finding(f"{tool} (optional)", bool(found), found or "not found",
                                "" if found else f"only for {use}"))
    return findings
