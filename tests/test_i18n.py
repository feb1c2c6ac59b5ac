"""Formatting agrees with Babel; catalogs are complete."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from hypothesis import given, settings
from hypothesis import strategies as st

from kpireport.core.i18n import Formatter, _whole_pattern, unsigned_zero

LOCALES = ["en_US", "vi_VN", "de_DE", "fr_FR", "en_IN", "ja_JP"]
values = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


@given(value=values, places=st.integers(0, 3), locale=st.sampled_from(LOCALES))
@settings(max_examples=400, deadline=None)
def test_numbers_percents_and_money_match_babel(value, places, locale):
    """Babel's text, except that a figure rounding to zero loses Babel's minus ('-0.0%')."""
    f = Formatter(locale, "VND" if locale == "vi_VN" else "USD")
    pattern = "#,##0" + ("." + "0" * places if places else "")
    assert f.number(value, places) == unsigned_zero(format_decimal(value, format=pattern,
                                                                   locale=locale))
    assert f.percent(value / 1000, places) == unsigned_zero(
        format_percent(value / 1000, format=pattern + "%", locale=locale))
    assert f.money(value) == unsigned_zero(format_currency(value, f.currency, locale=locale))
    assert f.money(value, places=0) == unsigned_zero(format_currency(
        value, f.currency, locale=locale, format=_whole_pattern(locale), currency_digits=False))


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
                assert f.percent(v, places) == unsigned_zero(
                    format_percent(v, format=pattern, locale=locale))
                checked += 1
    assert checked > 1000


# ---------------------------------------------------------------------------- no "-0"
MINUSES = "-\u2212"
NONZERO = set("123456789")
# Values near zero on both sides, at the scales where each precision rounds to zero or not.
near_zero = st.one_of(
    st.floats(min_value=-1e-2, max_value=1e-2, allow_nan=False),
    st.builds(lambda m, e: m * 10.0 ** e, st.floats(-9.99, 9.99, allow_nan=False),
              st.integers(-12, 1)),
    st.sampled_from([-0.0, 0.0, -0.005, -0.0049999, -0.0050001, -0.5, -0.4999, -0.0005,
                     -0.00005, -5e-7]),
    st.decimals(min_value=Decimal("-0.01"), max_value=Decimal("0.01"), places=6))


def _shows_minus(text: str) -> bool:
    return any(m in text for m in MINUSES)


@given(value=near_zero, places=st.integers(0, 4),
       locale=st.sampled_from(LOCALES), currency=st.sampled_from(["USD", "VND", "EUR", "JPY"]))
@settings(max_examples=600, deadline=None)
def test_no_minus_sign_on_a_figure_that_rounds_to_zero(value, places, locale, currency):
    """-0, −0.0%, -$0.00 never appear; a negative that does not round to zero keeps its sign."""
    f = Formatter(locale, currency)
    texts = [f.number(value, places), f.money(value), f.money(value, places=places),
             f.value(value, "number", None), f.value(value, "number", places),
             f.value(value, "currency", places)]
    if not isinstance(value, Decimal):
        texts += [f.percent(value, places), f.value(value, "percent", places)]
    for text in texts:
        digits = {c for c in text if c.isdigit()}
        if not digits & NONZERO:
            assert not _shows_minus(text), (value, text)
    exact = Decimal(repr(value)) if isinstance(value, float) else value
    shown = f.number(value, places)
    if exact.quantize(Decimal(1).scaleb(-places)) != 0 and exact < 0:
        assert _shows_minus(shown), (value, shown)


@pytest.mark.parametrize(("call", "expected"), [
    (lambda f: f.number(-0.0), "0"), (lambda f: f.number(-0.4), "0"),
    (lambda f: f.number(-0.6), "-1"), (lambda f: f.percent(-0.0004), "0.0%"),
    (lambda f: f.percent(-0.0006), "-0.1%"), (lambda f: f.money(-0.004), "$0.00"),
    (lambda f: f.money(Decimal("-0.00")), "$0.00"), (lambda f: f.money(-0.01), "-$0.01"),
    (lambda f: f.value(-1e-9, "percent", None), "0.0%")])
def test_zero_examples(call, expected):
    assert call(Formatter("en_US", "USD")) == expected


def test_files_and_diff_show_no_negative_zero():
    """The file writers' number helpers by their private names: scoring never produces a
    negative-zero bonus, so no workbook can reach these branches through a build."""
    from kpireport.month.diff import signed_money
    from kpireport.report.results_files import _fixed, _num, _plain, _zeroed

    f = Formatter("en_US", "USD")
    assert signed_money(f, -0.001) == "±$0.00"
    assert signed_money(f, 0.004) == "±$0.00"
    assert signed_money(f, -0.01) == "−$0.01"
    assert repr(_num(-0.0)) == "0.0"
    assert _plain(-1e-12) == "0.0"
    assert _fixed(Decimal("-0.00"), 2) == "0.00"
    assert _zeroed(-0.0004, 0.0005) == 0.0 and _zeroed(-0.0006, 0.0005) == -0.0006
