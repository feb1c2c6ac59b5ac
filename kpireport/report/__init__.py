"""Results → view models → HTML and PDF; the :class:`~kpireport.report.build.Build` and its run folder."""
