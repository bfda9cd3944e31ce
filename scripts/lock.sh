#!/usr/bin/env bash
# Re-resolve the locked versions (requirements/lock.txt) from pyproject.toml's ranges, in a throw-away
# virtual environment, and run the unit tests against them. The setup script installs from the lock, so
# CI and every new user get exactly these versions.
#
#   bash scripts/lock.sh              # newest versions that pyproject.toml allows, then the unit tests
#   bash scripts/lock.sh --no-tests   # only write the lock
#
# Review `git diff requirements/lock.txt`, run the integration tests too (.venv/bin/pytest -m integration
# after `bash scripts/setup.sh`), and commit the lock with the code that needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --upgrade pip
"$tmp/venv/bin/python" -m pip install --quiet "$TORCH_SPEC"
"$tmp/venv/bin/python" -m pip install --quiet ".[dev,lmeval,ray]"
{
  echo "# Locked versions for scripts/setup.sh (pip constraints). Regenerate with: bash scripts/lock.sh"
  echo "# Resolved with $("$tmp/venv/bin/python" --version) on $(date -u +%Y-%m-%d)."
  "$tmp/venv/bin/python" -m pip freeze --exclude-editable | grep -v '^saesteer[= @]'
} > requirements/lock.txt.new
mv requirements/lock.txt.new requirements/lock.txt
echo "wrote requirements/lock.txt ($(grep -vc '^#' requirements/lock.txt) packages)"
if [ "${1:-}" != "--no-tests" ]; then
  "$tmp/venv/bin/python" -m pip install --quiet --no-deps -e .
  "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider -m "not integration"
fi
