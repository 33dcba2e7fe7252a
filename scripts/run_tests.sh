#!/usr/bin/env bash
# Quick start, command 2: set up, then run the whole test suite (unit, integration on the real
# default model, doctests, notebooks under nbval in quick mode). No network needed after setup.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false SAFELENS_QUICK=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
$PY -m ruff check safelens tests benchmarks
$PY -m mypy  # strict on losses/, eval/metrics.py, geometry/ ([tool.mypy] in pyproject.toml)
$PY -m pytest tests --doctest-modules safelens -q -p no:cacheprovider "$@"
# Notebooks whose quick mode has been verified under nbval (listed in notebooks/ci.txt).
mapfile -t notebooks < <(grep -v '^#' notebooks/ci.txt | sed '/^$/d')
if ((${#notebooks[@]})); then
  $PY -m pytest --nbval-lax -p no:cacheprovider -q "${notebooks[@]}"
fi
