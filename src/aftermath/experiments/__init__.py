"""Ensembles under uncertainty, policy comparisons with common random numbers, executors and resuming."""

from aftermath.experiments.design import BASELINE, Arm, Experiment, design_experiment, read_scenario
from aftermath.experiments.executors import ExecutorError, ExecutorSpec
from aftermath.experiments.results import (
    EnsembleResult,
    band_table,
    comparison_table,
    paired_differences,
    variance_split,
)
from aftermath.experiments.runner import load_result, resume, run_experiment, run_stored
from aftermath.experiments.sampling import sample_draws

__all__ = [
    "BASELINE",
    "Arm",
    "EnsembleResult",
    "ExecutorError",
    "ExecutorSpec",
    "Experiment",
    "band_table",
    "comparison_table",
    "design_experiment",
    "load_result",
    "paired_differences",
    "read_scenario",
    "resume",
    "run_experiment",
    "run_stored",
    "sample_draws",
    "variance_split",
]
