#!/usr/bin/env bash
# The dependency floors: install every direct dependency at the lowest version pyproject.toml allows
# (constraints/floors.txt, kept in step with pyproject.toml by tests/test_dependency_floors.py) into
# .venv-floors, then run the tests that use what the floors were chosen for: scipy's qmc `rng=`, networkx's
# node_link_data(edges=), Jinja2 autoescaping, psutil's process creation time, the sub-model protocol
# (pydantic create_model), the engines, the CLI's `X | None` options (typer 0.13), SALib, pymoo and ema_workbench
# (tests/test_decisions.py), and arviz's Pareto-smoothed importance sampling (calibrate's laplace method).
# Binary wheels only: a floor without a wheel for this Python fails here.
# scripts/test.sh (and so CI) runs it after the suite. Only what these tests need is installed (the runtime
# dependencies with the netcdf and dask extras, pytest and packaging), not the whole dev extra.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv-floors/bin/python ]; then
  python3 -m venv .venv-floors
fi
.venv-floors/bin/python -m pip install --quiet --only-binary :all: -c constraints/floors.txt \
  -e '.[netcdf,dask]' 'pytest>=8' 'packaging>=23'
.venv-floors/bin/python -m pytest -q -p no:cacheprovider \
  tests/test_dependency_floors.py tests/test_helpers.py tests/test_submodels.py tests/test_layers.py \
  tests/test_decisions.py \
  "tests/test_experiments.py::test_latin_hypercube_puts_one_draw_in_each_stratum_of_every_parameter" \
  "tests/test_network.py::test_graph_export_round_trips_through_graphml_and_json" \
  "tests/test_store.py::test_a_reused_pid_does_not_make_a_dead_run_look_alive" \
  "tests/test_report.py::test_scenario_text_cannot_become_markup" \
  "tests/test_engines.py::test_deterministic_reproduces_competing_exits_closed_form" \
  "tests/test_homefront.py::test_the_cli_refuses_a_bad_home_front_with_exit_2_and_one_line" \
  "tests/test_calibration.py::test_the_laplace_posterior_agrees_with_importance_sampling_from_the_prior"
