"""The read-only containers of a view model (see :mod:`kpireport.report.views`)."""

from __future__ import annotations


class FrozenDict(dict):
    """A dict that cannot change: a view model once built (and every dict inside it).

    Templates, ``json`` and ``pickle`` read it as the dict it is; changing it raises
    TypeError (what a build adds to a view, like its archive copy, is a
    :class:`ViewBuilder` option).
    """

    __slots__ = ()

    def _read_only(self, *args, **kwargs):
        raise TypeError("a view model is read-only: give what it needs to ViewBuilder")

    __setitem__ = __delitem__ = __ior__ = _read_only  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]

    def __reduce__(self):
        return (FrozenDict, (dict(self),))


_NESTED = frozenset([dict, list, tuple])


def freeze(value):
    """``value`` with every dict made a :class:`FrozenDict` and every list a tuple (a
    FrozenDict is frozen already: the per-line parts are built frozen, not walked again)."""
    cls = type(value)
    if cls is dict:
        return FrozenDict({k: freeze(v) if type(v) in _NESTED else v
                           for k, v in value.items()})
    if cls is list or cls is tuple:
        return tuple([freeze(v) if type(v) in _NESTED else v for v in value])
    return value
