"""`aftermath ...`: a thin layer over the Python API. Each feature's commands live in their own module;
importing a module registers its commands on `app`, in the order `aftermath --help` lists them."""

from aftermath.cli import (  # noqa: F401
    backtest,  # backtest
    calibrate,  # calibrate
    core,  # run, check, scenarios, explain
    dashboard,  # dashboard
    decisions,  # sensitivity, feature-scores, discover, optimise
    experiments,  # ensemble, compare, runs, show, resume
    fitcheck,  # fit-check
    network,  # network
    report,  # report
)
from aftermath.cli.app import app, main

__all__ = ["app", "main"]
