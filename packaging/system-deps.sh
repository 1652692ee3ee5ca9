#!/usr/bin/env sh
# Install the system libraries Qt 6 needs (offscreen and on an X display) when they are
# missing. Debian/Ubuntu only; elsewhere it prints what to install and carries on.
set -eu

PACKAGES="libegl1 libgl1 libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0 \
libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xkb1 \
libxcb-shape0 libxcb-randr0 libxcb-xinerama0"
# --with-venv X.Y: also Python X.Y's venv module, which Debian and Ubuntu package apart.
if [ "${1:-}" = "--with-venv" ]; then
    PACKAGES="$PACKAGES python${2:-3}-venv"
fi

command -v dpkg-query >/dev/null 2>&1 || {
    echo "system-deps: not a Debian/Ubuntu system; make sure Qt 6's libraries are installed:"
    echo "  $PACKAGES"
    exit 0
}

missing=""
for package in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
        || missing="$missing $package"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = "0" ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "system-deps: please install as root: apt-get install$missing" >&2
    exit 1
fi
echo "system-deps: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
