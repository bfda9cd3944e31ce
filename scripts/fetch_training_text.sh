#!/usr/bin/env bash
# Fetch the multilingual training text for the default SAE from the Debian archive (no Hugging Face hub).
#
#   scripts/fetch_training_text.sh [CACHE_DIR]      (default: /work/train_cache)
#
# Writes, under CACHE_DIR:
#   debs/<pkg>_<version>_<arch>.deb   the downloaded packages (never installed)
#   pkgs/<pkg>/...                    each package extracted with dpkg-deb -x, its control file in pkgs/<pkg>/DEBIAN/
#   ddtp/Translation-<lang>           the decompressed DDTP package-description translations (bookworm main)
# Sources (name, licence) are recorded per package by `saesteer train-sae` in the report.
set -euo pipefail

CACHE="${1:-/work/train_cache}"
mkdir -p "$CACHE/debs" "$CACHE/pkgs" "$CACHE/ddtp"

# Translated manual pages (one package per language; `manpages` is the English original) and packages
# that carry many translation catalogues (.mo files: libc, coreutils, util-linux, tar, ...).
MANPAGES="manpages manpages-fr manpages-de manpages-es manpages-it manpages-pt-br manpages-nl manpages-pl \
manpages-ru manpages-tr manpages-id manpages-zh"
CATALOGUES="libc-l10n coreutils util-linux-locales tar findutils diffutils dpkg wget"
# DDTP languages (apt's names; pt_BR and zh_CN are mapped to pt and zh by saesteer).
DDTP_LANGS="en,fr,de,es,it,pt,pt_BR,nl,pl,ru,tr,id,zh_CN"

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get -o Acquire::Languages="$DDTP_LANGS" update >/dev/null

cd "$CACHE/debs"
# shellcheck disable=SC2086
apt-get download $MANPAGES $CATALOGUES 2>&1 | grep -v '^W: Download is performed unsandboxed' || true

for deb in "$CACHE"/debs/*.deb; do
    pkg="$(dpkg-deb -f "$deb" Package)"
    dest="$CACHE/pkgs/$pkg"
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
    dpkg-deb -x "$deb" "$dest.tmp"
    dpkg-deb -e "$deb" "$dest.tmp/DEBIAN"
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
done

for f in /var/lib/apt/lists/*_debian_dists_*_main_i18n_Translation-*; do
    case "$f" in *bookworm-*) continue ;; esac   # main suite only, not -updates / -security
    lang="${f##*Translation-}"; lang="${lang%.*}"; lang="${lang/\%5f/_}"
    /usr/lib/apt/apt-helper cat-file "$f" > "$CACHE/ddtp/Translation-$lang.tmp"
    mv "$CACHE/ddtp/Translation-$lang.tmp" "$CACHE/ddtp/Translation-$lang"
done
# Record which archive release the DDTP files come from (Suite, Version, Date of the InRelease file).
for rel in /var/lib/apt/lists/*_debian_dists_bookworm_InRelease /var/lib/apt/lists/*_debian_dists_bookworm_Release; do
    if [ -f "$rel" ]; then grep -E '^(Origin|Suite|Codename|Version|Date):' "$rel" > "$CACHE/ddtp/RELEASE"; break; fi
done
echo "fetched $(ls "$CACHE/pkgs" | wc -l) packages and $(ls "$CACHE/ddtp" | wc -l) DDTP files into $CACHE"
