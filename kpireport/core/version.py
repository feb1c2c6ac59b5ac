"""kpireport's version: one place, read by the packaging (pyproject.toml) and the library."""

__version__ = "0.1.0"
