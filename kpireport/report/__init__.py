"""Results → view models → HTML and PDF; the Build (kpireport.report.build) and its run folder."""
