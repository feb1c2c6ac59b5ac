"""Every renderer's garbage-collector policy, and its memory, flat however many reports it
renders. A render worker (kpireport's own process): set-up frozen after the first report, no
automatic collection during a report, one full collection after each. A renderer in a process
kpireport does not own (the build's own process, a Dask worker): the bounded form, no
automatic collection during a report and one collection of the young generations after it
(kpireport.report.render.render_in_place)."""

from __future__ import annotations

import gc
import os
import tempfile
from pathlib import Path

import pytest

from kpireport import api
from kpireport.data_in import samples, template
from kpireport.report import cluster, render
from kpireport.report.views import all_views
from kpireport.score.results import compute

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"

# Resident memory may grow this much from the 20th to the 200th report. Measured with the
# four-page employee review: a worker 101.6 MiB after 20, +10.7 MiB after 200; in place (this
# process) 145.7 MiB, +11.0 MiB (caches of glyphs and shaped text filling, allocator pages not
# handed back); keeping one report's layout alive each time would add ~1 MiB a report.
GROWTH_LIMIT = 16 * 2**20


def _rss(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status
                    if line.startswith("VmRSS:"))


def _children_rss() -> int:
    """Resident bytes of this process's child processes: the render worker (and
    multiprocessing's resource tracker, which does not grow)."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as handle:
            for pid in handle.read().split():
                total += _rss(pid)
    return total


def _employee_views(tmp_path: Path, people: int) -> list[dict]:
    book_path = template.write_workbook(tmp_path / "synthetic.xlsx", samples.synthetic(people))
    book, issues = api.load(book_path)
    return [v for v in all_views(compute(book, issues), ("pdf",)) if v["kind"] == "employee"]


def _collections(body) -> list[int]:
    """The generation of every garbage collection that runs while ``body()`` does."""
    seen: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(record)
    try:
        body()
    finally:
        gc.callbacks.remove(record)
    return seen


@pytest.fixture
def dask_worker_here(tmp_path, monkeypatch):
    """cluster.render_remote, the code a Dask worker runs, in this process (its template
    folder in tmp_path); the renderer it keeps is dropped afterwards."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    bundle = render.template_bundle(render.template_dirs(None))
    key = render.bundle_fingerprint(bundle)[:16]
    yield lambda view: cluster.render_remote(view, ("pdf",), key, bundle)
    cluster._RENDERERS.pop(key, None)  # the module's cache of renderers (a test's own)


def test_a_report_rendered_in_place_runs_no_collection_but_one_after_it(tmp_path,
                                                                        dask_worker_here):
    views = _employee_views(tmp_path, 4)
    renderer = render.Renderer(render.template_dirs(None))
    renderer.render(views[0], ("pdf",))  # set-up
    assert gc.isenabled()
    unbounded = _collections(lambda: renderer.render(views[1], ("pdf",)))
    assert len(unbounded) > 10  # what the policy spares: automatic passes during the report
    assert _collections(lambda: render.render_in_place(renderer, views[2], ("pdf",))) == [1]
    assert gc.isenabled()
    dask_worker_here(views[0])
    assert _collections(lambda: dask_worker_here(views[3])) == [1]
    assert gc.isenabled()


def test_html_reports_of_a_build_render_in_place_each_in_a_step_of_its_own(tmp_path,
                                                                          monkeypatch):
    paused: list[bool] = []
    original = render.Renderer.render

    def watched(self, view, formats):
        paused.append(not gc.isenabled())
        return original(self, view, formats)

    # The renderer's own method, watched: whether automatic collection is paused meanwhile.
    monkeypatch.setattr(render.Renderer, "render", watched)
    collections = _collections(lambda: api.build(SAMPLES / "acme.xlsx", out=tmp_path / "out",
                                                 formats=("html",)))
    assert paused and all(paused)
    assert collections.count(1) >= len(paused)  # one collection after each report (at least)


def _flat(render_all, views: list[dict], rss) -> tuple[int, int]:
    render_all(views[:20])
    after_20 = rss()
    render_all(views[20:200])
    return after_20, rss()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_a_worker_rendering_200_reports_stays_flat(tmp_path):
    views = _employee_views(tmp_path, 210)
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

        after_20, after_200 = _flat(render_all, views, _children_rss)
    finally:
        pool.close()
    print(f"worker RSS after 20 reports {after_20 / 2**20:.1f} MiB, "
          f"after 200 {after_200 / 2**20:.1f} MiB")
    assert after_200 - after_20 <= GROWTH_LIMIT


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_rendering_200_reports_in_place_stays_flat(tmp_path, dask_worker_here):
    """The in-place renderer (a Dask worker's code, the bounded policy) in this process."""
    views = _employee_views(tmp_path, 210)

    def render_all(batch: list) -> None:
        for view in batch:
            assert view["file"] + ".pdf" in dask_worker_here(view)

    after_20, after_200 = _flat(render_all, views, _rss)
    print(f"in-place RSS after 20 reports {after_20 / 2**20:.1f} MiB, "
          f"after 200 {after_200 / 2**20:.1f} MiB")
    assert after_200 - after_20 <= GROWTH_LIMIT
