"""Work done beside this process, on the other core: a forked child whose result comes back.

A cold 1,000-person HTML build is CPU-bound Python. A thread of this process would take its time
from the caller (the GIL); a pool of spawned workers would first import kpireport and read the
book again. A forked child shares everything already computed copy-on-write, starts in a few
milliseconds and hands its result back pickled, through an unlinked spool file (it never blocks
on a full pipe, and nothing is left behind however it ends). The child ignores Ctrl-C (the
caller handles it) and dies with the caller.

:func:`start` returns the function that waits for the result. If the child fails — or fork is
not there (not Linux) — the work runs again in this process when waited for (in a thread started
at once where there is no fork), so its error is raised in the caller, as if nothing had been
forked.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class _Reaper(threading.Thread):
    """The thread that reaps one child (it only waits for it)."""


def available() -> bool:
    """Whether work is forked (Linux), not run in a thread of this process."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def alone() -> bool:
    """Whether the only other threads are the reapers of earlier children (which only wait
    for their child): then no thread can hold an import lock when this one forks, and a child
    may import. In a server, other threads may be importing at any moment."""
    harmless = {threading.get_ident()}
    harmless.update(t.ident for t in threading.enumerate() if isinstance(t, _Reaper))
    # Every thread running Python, however it was started (``_thread``, an extension's
    # native thread holding a thread state), not only those ``threading`` knows of.
    frames = getattr(sys, "_current_frames", None)
    running = set(frames()) if frames else {t.ident for t in threading.enumerate()}
    return running <= harmless


def start(work: Callable[[], T], *, name: str = "kpireport-child") -> Callable[[], T]:
    """Start ``work()`` beside the caller; the returned function waits for its value (or
    raises what ``work`` raised)."""
    if available():
        try:
            return _in_child(work, name)
        except OSError:  # no fork, no spool: the thread below
            pass
    return _in_thread(work, name)


def _in_child(work: Callable[[], T], name: str) -> Callable[[], T]:
    import gc
    import pickle
    import signal
    import tempfile

    from kpireport.render import die_with_parent

    spool = tempfile.TemporaryFile()  # noqa: SIM115 (read back by wait())
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        spool.close()
        raise
    if pid == 0:  # the child: never returns
        code = 1
        try:
            gc.disable()  # short-lived: a collection would only copy the parent's pages
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
            die_with_parent(parent)
            pickle.dump(work(), spool, protocol=pickle.HIGHEST_PROTOCOL)
            spool.flush()
            code = 0
        except BaseException:  # noqa: BLE001 (the parent runs the work again and raises)
            pass
        finally:
            os._exit(code)
    status: list[int] = []
    # Reaped as soon as it ends, even if nobody waits (a build that stops early leaves no
    # zombie in a long-running server). The thread holds no lock while it waits.
    reaper = _Reaper(target=lambda: status.append(os.waitpid(pid, 0)[1]), name=name,
                     daemon=True)
    reaper.start()

    def wait() -> T:
        reaper.join()
        with spool:
            if status[0] == 0:
                spool.seek(0)
                try:
                    return pickle.load(spool)
                except Exception:  # noqa: BLE001 (a torn spool: do the work here)
                    pass
        return work()

    return wait


def _in_thread(work: Callable[[], T], name: str) -> Callable[[], T]:
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future.result
