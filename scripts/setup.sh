#!/usr/bin/env bash
# Set up saesteer in a local virtual environment (.venv), offline-capable after this step.
#
#   bash scripts/setup.sh            # creates .venv and installs saesteer with the dev tools and Ray
#   PYTHON=python3.12 bash scripts/setup.sh
#
# torch is installed first and pinned to the CPU build that this machine's pip can take from disk
# (torch==2.13.0); installing a bare `torch` would pull a multi-GB CUDA build. Override with TORCH_SPEC.
#
# Every other package is installed at the version in requirements/lock.txt (pip constraints), so a new
# user, CI and the developers run exactly the versions the tests passed with. `bash scripts/lock.sh`
# re-resolves the lock within pyproject.toml's ranges and runs the tests (see docs/development.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "$TORCH_SPEC"
# [ray]: the optional distributed engine, installed here so its tests run (docs/cluster.md)
.venv/bin/python -m pip install --quiet -c requirements/lock.txt -e ".[dev,lmeval,ray]"
# the Jupyter kernel the notebooks (and their CI test) run on
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
.venv/bin/saesteer --version
