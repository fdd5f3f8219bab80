#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then lint and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
if [ -f scripts/install-browser.sh ]; then
  bash scripts/install-browser.sh
fi

.venv/bin/ruff check src tests benchmarks scripts
# pytest exits 5 when it collects no test: with `set -e` that fails the run, as it should.
.venv/bin/python -m pytest -n 2 --dist loadfile -q "$@"
# The same tests' core at the lowest dependency versions pyproject.toml declares (a second environment).
bash scripts/test-floors.sh
