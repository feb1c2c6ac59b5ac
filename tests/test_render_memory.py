"""A render worker's memory stays flat however many reports it renders (its garbage-collector
policy: set-up frozen after the first report, no automatic collection during a report, one
collection after each)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kpireport import api
from kpireport.data_in import samples, template
from kpireport.report import render
from kpireport.report.views import all_views
from kpireport.score.results import compute

# Resident memory may grow this much from the 20th to the 200th report. Measured: 88 MiB
# after 20, +5.6 MiB after 200 (caches of glyphs and shaped text filling, allocator pages
# not handed back); keeping one report's layout alive each time would add ~1 MiB a report.
GROWTH_LIMIT = 16 * 2**20


def _children_rss() -> int:
    """Resident bytes of this process's child processes: the render worker (and
    multiprocessing's resource tracker, which does not grow)."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as handle:
            for pid in handle.read().split():
                with open(f"/proc/{pid}/status") as status:
                    total += next(int(line.split()[1]) * 1024 for line in status
                                  if line.startswith("VmRSS:"))
    return total


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_a_worker_rendering_200_reports_stays_flat(tmp_path):
    book_path = template.write_workbook(tmp_path / "synthetic.xlsx", samples.synthetic(210))
    book, issues = api.load(book_path)
    views = [v for v in all_views(compute(book, issues), ("pdf",)) if v["kind"] == "employee"]
    assert len(views) >= 200
    pool = render.RenderPool(render.template_dirs(None), ("pdf",), workers=1)
    try:
        def render_all(batch: list) -> None:
            finished = []
            for view in batch:
                finished += pool.submit(view)
            finished += pool.drain()
            assert len(finished) == len(batch)
            assert all(isinstance(files, dict) for _, files in finished), finished[:1]

        render_all(views[:20])
        after_20 = _children_rss()
        render_all(views[20:200])
        after_200 = _children_rss()
    finally:
        pool.close()
    print(f"worker RSS after 20 reports {after_20 / 2**20:.1f} MiB, "
          f"after 200 {after_200 / 2**20:.1f} MiB")
    assert after_200 - after_20 <= GROWTH_LIMIT
