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
#
# Last, the embedded default model is dequantized once into the user cache (about 100 s on 2 cores), so
# that the first `saesteer quickstart` loads it in seconds; SAESTEER_SETUP_NO_MODEL=1 skips that (the
# first use of the model then does it).
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
if [ "${SAESTEER_SETUP_NO_MODEL:-0}" != "1" ]; then
  echo "preparing the default model (dequantized once into the user cache, about 100 s on 2 cores)"
  .venv/bin/python -c "from saesteer.models.loading import ensure_default_cache; print(ensure_default_cache()[0])"
fi
