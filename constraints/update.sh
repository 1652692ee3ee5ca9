#!/bin/sh
# Re-resolves the two dependency sets that `make` installs and CI tests:
#   newest.txt  the newest releases that resolve, per Python 3.9 to 3.13 (markers)
#   oldest.txt  the oldest that pyproject.toml allows, on Python 3.11 (the Python CI tests it on)
# Both are full pins, test tools included; MXNet is not in them (the Makefile installs it).
# Needs uv (`pip install uv`). Run from anywhere, then run `make test` and `make test DEPS=oldest`.
set -eu
cd "$(dirname "$0")/.."
uv="${UV:-uv}"
common="pyproject.toml --extra test --no-build --quiet --no-header"
header() { printf '# %s\n# Made by constraints/update.sh; do not edit by hand.\n' "$1"; }
{
    header "Newest releases that resolve, for Python 3.9 to 3.13."
    $uv pip compile $common --universal --python-version 3.9
} > constraints/newest.txt
{
    header "Oldest releases pyproject.toml allows (the runtime ones), for Python 3.11."
    $uv pip compile $common --resolution lowest-direct --python-version 3.11 \
        --python-platform x86_64-manylinux_2_28
} > constraints/oldest.txt
