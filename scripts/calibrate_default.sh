#!/bin/sh
# Recalibrate the default scenario and write the posterior it ships with.
#
# `aftermath calibrate` (emcee over the deterministic engine) fits the uncertain parameters of
# isis_after_caliphate to its observations dated up to 2017-12 only (later figures are never read), stores
# the calibration as a run in $STORE, and writes its draws to
# src/aftermath/scenarios/isis_after_caliphate.posterior.csv with the scenario's hash and the draws' SHA-256.
# `aftermath run` (and ensemble, compare, fit-check, report) then draws from it by default; a draws file that
# does not match the scenario is not used (warning) and a changed one is refused: rerun this script after
# editing the scenario.
#
#     scripts/calibrate_default.sh                      # 84 walkers x 400 steps: about 21 min of CPU
#     STEPS=1000 scripts/calibrate_default.sh           # a longer chain
#     scripts/calibrate_default.sh --resume RUN         # continue a killed one (add --steps N to end or extend it)
#
# Extra arguments go to `aftermath calibrate`. Run it from anywhere; it works in the repository root.
set -eu
cd "$(dirname "$0")/.."
AFTERMATH=${AFTERMATH:-.venv/bin/aftermath}
exec "$AFTERMATH" calibrate isis_after_caliphate --until 2017-12 --steps "${STEPS:-400}" --draws 1000 --seed 1 \
    --store "${STORE:-calibration.duckdb}" --draws-file src/aftermath/scenarios/isis_after_caliphate.posterior.csv "$@"
