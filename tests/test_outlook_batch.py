"""What it takes, worked out for all lines at once (kpireport.score.pace_batch): the same
outlooks as each line's own search, on a synthetic book at several months before year end."""

from __future__ import annotations

import pytest

from kpireport import api
from kpireport.data_in import samples, template
from kpireport.score import outlook as outlook_mod
from kpireport.score.results import compute


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    path = tmp_path_factory.mktemp("batch") / "synthetic.xlsx"
    template.write_workbook(path, samples.synthetic(80), force=True)
    return api.load(path)


@pytest.mark.parametrize("months_before_end", [1, 4, 6, 9])
def test_batched_edges_match_each_lines_search(book, months_before_end, monkeypatch):
    loaded, issues = book
    shifted = api.with_period(loaded, loaded.settings.report_period - months_before_end)
    batched = compute(shifted, issues).outlooks
    solved = {}
    for name in ("_solve_plain", "_solve_formulas"):
        real = getattr(outlook_mod, name)

        def count(solvers, real=real, name=name):
            found = real(solvers)
            solved[name] = solved.get(name, 0) + len(found)
            return found
        monkeypatch.setattr(outlook_mod, name, count)
    assert compute(shifted, issues).outlooks  # computed (a cached property), counting searches
    # Most lines (plain and formula) are read from the batched passes, not searched.
    lines = sum(len(o.kpis) for o in batched.values())
    assert solved["_solve_plain"] > lines / 2
    assert solved["_solve_formulas"] > 0
    # Each line's own search: the batched reading turned off.
    monkeypatch.setattr(outlook_mod, "_solve_plain", lambda solvers: {})
    monkeypatch.setattr(outlook_mod, "_solve_formulas", lambda solvers: {})
    searched = compute(shifted, issues).outlooks
    assert batched.keys() == searched.keys()
    paces = 0
    for owner, found in batched.items():
        assert found == searched[owner], owner
        paces += sum(n.state == "pace" for k in found.kpis for n in k.needs)
    assert paces > 0
