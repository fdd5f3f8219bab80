"""`aftermath ...`: a thin layer over the Python API. Each feature's commands live in their own module."""

from aftermath.cli.app import app, main
from aftermath.cli import core  # noqa: F401  (registers run, check, scenarios, explain)

__all__ = ["app", "main"]
from aftermath.cli import network  # noqa: F401  (registers network)
from aftermath.cli import experiments  # noqa: F401  (registers ensemble, compare, runs, show, resume)
from aftermath.cli import report  # noqa: F401  (registers report)
from aftermath.cli import fitcheck  # noqa: F401  (registers fit-check)
