"""A real, local JupyterHub for the demo, the tests and the benchmarks.

``python -m devhub --workdir DIR`` (run with the hub venv's python) starts the JupyterHub of that venv (6.1, 5.5 or 4.1) behind
configurable-http-proxy with TLS from a private CA whose server certificate names only
``jupyterhub``, creates users with API tokens, starts their servers and writes a JSON ready file.
See ``python -m devhub --help``, :mod:`devhub.cli` and :mod:`devhub.hub`.

Only the standard library is imported at package import time; ``trustme`` is imported when the
certificates are made.
"""

TLS_NAME = "jupyterhub"
ADMIN_SERVICE = "devhub-admin"

__all__ = ["TLS_NAME", "ADMIN_SERVICE"]
