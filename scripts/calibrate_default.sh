#!/bin/sh
# Recalibrate the default scenario and write the posterior it ships with.
#
# `aftermath calibrate` fits the uncertain parameters of isis_after_caliphate to its observations dated up to
# 2017-12 only (later figures are never read): the posterior mode, the Laplace approximation there, and importance
# sampling with it as the proposal (method laplace; see docs/model.md, "The posterior and the backtest"). It stores
# the calibration as a run in $STORE, and writes its draws to
# src/aftermath/scenarios/isis_after_caliphate.posterior.csv with the scenario's hash and the draws' SHA-256.
# `aftermath run` (and ensemble, compare, fit-check, report) then draws from it by default; a draws file that
# does not match the scenario is not used (warning) and a changed one is refused: rerun this script after
# editing the scenario.
#
#     scripts/calibrate_default.sh                      # 8,000 proposals: under a minute of CPU
#     STEPS=20000 scripts/calibrate_default.sh          # more proposals (a larger effective sample)
#     scripts/calibrate_default.sh --method emcee --steps 2000   # the ensemble MCMC instead (hours to mix)
#
# Extra arguments go to `aftermath calibrate`. Run it from anywhere; it works in the repository root.
set -eu
cd "$(dirname "$0")/.."
AFTERMATH=${AFTERMATH:-.venv/bin/aftermath}
exec "$AFTERMATH" calibrate isis_after_caliphate --until 2017-12 --method laplace --steps "${STEPS:-8000}" \
    --draws 1000 --seed 1 \
    --store "${STORE:-calibration.duckdb}" --draws-file src/aftermath/scenarios/isis_after_caliphate.posterior.csv "$@"
