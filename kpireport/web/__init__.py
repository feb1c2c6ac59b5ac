"""``kpireport serve``: a local web app over the same library calls as the CLI.

:mod:`kpireport.web.app` has the pages, :mod:`kpireport.web.actions` the library calls they
make, :mod:`kpireport.web.security` what every request is checked for.
"""
