"""One bounded step without automatic garbage collection, ended by a collection.

Reading a workbook or scoring it allocates hundreds of thousands of small objects, none in a
cycle: the collector's automatic passes over them cost ~15% of the step and find nothing.
:func:`bounded_step` pauses automatic collection for such a step and collects once when it ends,
so whatever the step left in a cycle is freed there and the pause never outlives the step
(never a whole build, never a server's process). Nested steps leave the pause to the outer one.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def bounded_step() -> Iterator[None]:
    """Automatic collection paused for the body; one collection of the young generations after
    it (what the step allocated), however the body ends."""
    if not gc.isenabled():  # an outer step (or the caller) has paused it: theirs to end
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect(1)
