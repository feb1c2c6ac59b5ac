"""Render on a Dask cluster: ``kpireport build BOOK --dask tcp://HOST:PORT``.

Reading, validation and scoring stay on the client. The template folders (with the fonts) are
sent to every worker once, as bytes; each task sends one small view model and returns the
rendered files, so workers need kpireport and nothing of the client's disk. Dask re-runs the
tasks of a worker that dies; a build with no worker left fails instead of waiting forever.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kpireport.core.errors import KpireportError
from kpireport.report.render import Renderer, bundle_fingerprint, render_in_place, template_bundle

STALL_SECONDS = float(os.environ.get("KPIREPORT_DASK_STALL_SECONDS", "120"))
_RENDERERS: dict[str, object] = {}


def render_remote(view: dict, formats: tuple[str, ...], key: str,
                  bundle: dict[str, bytes]) -> dict[str, bytes]:
    """Runs on a worker: unpack the templates once per bundle, then render one report with
    the per-report garbage-collector policy (:func:`~kpireport.report.render.render_in_place`:
    a Dask worker is not kpireport's process, so the bounded form)."""

    renderer = _RENDERERS.get(key)
    if renderer is None:
        folder = Path(tempfile.gettempdir()) / f"kpireport-templates-{key}-{os.getpid()}"
        for name, data in bundle.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        renderer = _RENDERERS[key] = Renderer((folder.resolve(),))
    return render_in_place(renderer, view, formats)  # type: ignore[arg-type]


def dask_submitter(address: str, *, connect_timeout: float = 10.0,
                   stall_seconds: float = STALL_SECONDS) -> Callable:
    """A ``submit`` for :func:`kpireport.report.render.render_views` that uses the cluster."""
    try:
        # lazy: distributed is loaded only where it is used (start-up stays light)
        import distributed  # noqa: F401
    except ImportError:
        raise KpireportError("--dask needs Dask distributed; install it with "
                             "pip install 'kpireport[dask]'") from None

    def submit(views: list[dict], formats: tuple[str, ...], dirs: tuple[Path, ...],
               done: Callable) -> None:
        # lazy: distributed is loaded only where it is used (start-up stays light)
        from distributed import Client

        try:
            client = Client(address, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise KpireportError(f"cannot reach the Dask scheduler at {address} ({exc})") from None
        with client:
            _check_workers(client, address)
            bundle = template_bundle(dirs)
            key = bundle_fingerprint(bundle)[:16]
            [shared] = client.scatter([bundle], broadcast=True, hash=False)
            futures = {client.submit(render_remote, view, formats, key, shared, retries=2,
                                     pure=False): view for view in views}
            _collect(client, futures, done, stall_seconds)

    return submit


def _check_workers(client, address: str) -> None:
    workers = client.scheduler_info().get("workers", {})
    if not workers:
        client.wait_for_workers(1, timeout=30)
    found = client.run(importlib.util.find_spec, "kpireport", on_error="return")
    missing = sorted(w for w, spec in found.items()
                     if spec is None or isinstance(spec, BaseException))
    if missing:
        raise KpireportError(f"the Dask workers {', '.join(missing)} do not have kpireport "
                             "installed; install the same kpireport version (and fonts) on "
                             "every worker")


def _collect(client, futures: dict, done: Callable, stall_seconds: float) -> None:
    # lazy: distributed is loaded only where it is used (start-up stays light)
    from distributed import wait

    pending = set(futures)
    idle_since = time.monotonic()
    while pending:
        try:
            finished, pending = wait(pending, timeout=2, return_when="FIRST_COMPLETED")
        except TimeoutError:
            workers = client.scheduler_info().get("workers", {})
            if workers:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > stall_seconds:
                for future in pending:
                    future.cancel()
                raise KpireportError(f"no Dask worker has been connected for "
                                     f"{stall_seconds:.0f} s; {len(pending)} report(s) were "
                                     "not rendered") from None
            continue
        for future in finished:
            view = futures[future]
            try:
                done(view, future.result())
            except Exception as exc:  # a failed report is reported by name, not raised
                done(view, exc)
