"""Formatting agrees with Babel; catalogs are complete."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from hypothesis import given, settings
from hypothesis import strategies as st

from kpireport.core.i18n import Formatter, _whole_pattern

LOCALES = ["en_US", "vi_VN", "de_DE", "fr_FR", "en_IN", "ja_JP"]
values = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


@given(value=values, places=st.integers(0, 3), locale=st.sampled_from(LOCALES))
@settings(max_examples=400, deadline=None)
def test_numbers_percents_and_money_match_babel(value, places, locale):
    f = Formatter(locale, "VND" if locale == "vi_VN" else "USD")
    pattern = "#,##0" + ("." + "0" * places if places else "")
    assert f.number(value, places) == format_decimal(value, format=pattern, locale=locale)
    assert f.percent(value / 1000, places) == format_percent(value / 1000, format=pattern + "%",
                                                             locale=locale)
    assert f.money(value) == format_currency(value, f.currency, locale=locale)
    assert f.money(value, places=0) == format_currency(
        value, f.currency, locale=locale, format=_whole_pattern(locale), currency_digits=False)


def test_examples():
    assert Formatter("vi_VN", "VND").money(10_000_000_000).replace("\xa0", " ") == \
        "10.000.000.000 ₫"
    assert Formatter("en_US", "USD").money(Decimal("12345.675")) == "$12,345.68"
    assert Formatter("en_US", "USD").money(-5) == "-$5.00"
    assert Formatter("en_US", "USD").percent(0.9876) == "98.8%"
    assert Formatter("vi_VN", "VND").percent(0.9876) == "98,8%"


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_catalogs_translate_every_message(lang):
    root = Path(__file__).resolve().parents[1] / "kpireport" / "locale"
    with (root / "kpireport.pot").open("rb") as handle:
        template = read_po(handle)
    with (root / lang / "LC_MESSAGES" / "kpireport.po").open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    missing = [m.id for m in template if m.id and (m.id not in catalog or
                                                  not catalog[m.id].string)]
    assert missing == []
    assert not [m.id for m in catalog if m.fuzzy and m.id]


def test_catalog_template_is_up_to_date(tmp_path):
    import subprocess
    import sys

    project = Path(__file__).resolve().parents[1]
    out = tmp_path / "fresh.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    str(project / "babel.cfg"), "-o", str(out), "--no-location",
                    "--sort-output", "--omit-header", str(project)],
                   check=True, capture_output=True, cwd=project)
    with out.open("rb") as handle:
        fresh = {m.id for m in read_po(handle) if m.id}
    with (project / "kpireport" / "locale" / "kpireport.pot").open("rb") as handle:
        committed = {m.id for m in read_po(handle) if m.id}
    assert fresh == committed, "run the extraction in docs/development.md (Translations) again"


@pytest.mark.parametrize("locale", ["en_US", "vi_VN", "de_DE"])
@pytest.mark.parametrize("places", [0, 1, 2, 3])
def test_percents_at_and_near_rounding_ties_match_babel(locale, places):
    """The float fast path of Formatter.percent must round ties half-even on the decimal value,
    as Babel does: 0.0125 → 1.2%, 0.0135 → 1.4%, and neighbours a float step away."""
    import math

    f = Formatter(locale, "USD")
    pattern = "#,##0" + ("." + "0" * places if places else "") + "%"
    unit = 10 ** -(places + 2)
    checked = 0
    for n in range(-1500, 1500, 7):
        for value in ((n + 0.5) * unit, n * unit / 10, (n + 0.5) * unit * 1000):
            for v in (value, math.nextafter(value, math.inf), math.nextafter(value, -math.inf)):
                assert f.percent(v, places) == format_percent(v, format=pattern, locale=locale)
                checked += 1
    assert checked > 1000
