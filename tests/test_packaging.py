"""A plain (non-editable) install ships the templates, fonts, catalogs and schema."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def test_wheel_contains_templates_fonts_catalogs_and_schema(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(PROJECT)], check=True, capture_output=True,
                   timeout=300)
    wheel = next(tmp_path.glob("kpireport-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("kpireport/templates/employee.html", "kpireport/templates/print.css",
                 "kpireport/templates/email_body.txt",
                 "kpireport/templates/fonts/NotoSans-Regular.ttf",
                 "kpireport/templates/fonts/KpiSymbols.ttf", "kpireport/templates/fonts/OFL.txt",
                 "kpireport/locale/vi/LC_MESSAGES/kpireport.po",
                 "kpireport/schemas/results-1.schema.json", "kpireport/py.typed",
                 "kpireport/data_in/mappings/hubspot-deals.toml",
                 "kpireport/data_in/mappings/ad-campaigns.toml",
                 "kpireport/core/catalogue.toml", "kpireport/read/validate/__init__.py",
                 "kpireport/web/templates/base.html", "kpireport/web/templates/check.html",
                 "kpireport/web/static/app.css", "kpireport/web/static/app.js"):
        assert name in names, name
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "kpireport = kpireport.cli:entry" in zipfile.ZipFile(wheel).read(
        entry_points).decode()
