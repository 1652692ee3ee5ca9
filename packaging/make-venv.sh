#!/usr/bin/env sh
# Builds or updates the virtual environment that `make run` and `make test` use.
#   make-venv.sh VENV CONSTRAINTS MXNET [PYTHON]
# VENV: the folder; CONSTRAINTS: a file of constraints/ (which set of versions);
# MXNET: the MXNet requirement (mxnet==1.9.1, or a CUDA build such as mxnet-cu112==1.9.1);
# PYTHON: the interpreter; when empty, the newest supported one found on PATH.
set -eu
venv=$1 constraints=$2 mxnet=$3 python=${4:-}

SUPPORTED="3.13 3.12 3.11 3.10 3.9"

version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3.10 python3.9 python3; do
        version=$(version_of "$candidate") || continue
        case " $SUPPORTED " in *" $version "*) echo "$candidate"; return 0 ;; esac
    done
    echo "imgcls-desktop needs Python 3.9 to 3.13 (python3 here: $(version_of python3 || echo none));" \
        "install one (e.g. apt-get install python3.11, or python.org) and run make PYTHON=/path/to/python3.X" >&2
    return 1
}

[ -n "$python" ] || python=$(find_python)
version=$(version_of "$python") || { echo "make: PYTHON=$python does not run" >&2; exit 1; }
case " $SUPPORTED " in
    *" $version "*) ;;
    *) echo "make: PYTHON=$python is Python $version; imgcls-desktop needs 3.9 to 3.13" >&2; exit 1 ;;
esac

# Qt's system libraries, and Debian's separately packaged venv module when missing.
if "$python" -c "import ensurepip" 2>/dev/null; then
    sh packaging/system-deps.sh
else
    sh packaging/system-deps.sh --with-venv "$version"
fi

if [ -x "$venv/bin/python" ] && [ "$(version_of "$venv/bin/python")" != "$version" ]; then
    echo "make: $venv was made with another Python; making it anew with Python $version"
    rm -rf "$venv"
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
echo "make: $venv: Python $version, $(basename "$constraints"), $mxnet"
pip="$venv/bin/python -m pip --quiet"
$pip install --upgrade pip
$pip install --constraint "$constraints" --editable '.[test]'
# MXNet 1.9.1's wheels declare numpy<2, which would keep numpy 2 (and Python 3.13) out; its
# other dependency that it uses, requests, is one of ours. So: without its dependencies, and
# only one build of it at a time (they all provide the `mxnet` module).
for build in mxnet mxnet-cu112 mxnet-cu117; do
    case "$mxnet" in "$build=="*) continue ;; esac
    $pip uninstall --yes "$build" 2>/dev/null || true
done
$pip install --no-deps "$mxnet"
