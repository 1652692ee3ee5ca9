#!/usr/bin/env bash
# Smoke test of the one-folder bundle (`make bundle-test`), run with nothing but the bundle:
# every command starts under `env -i` with a minimal environment (no venv, no PYTHONPATH, a
# fresh HOME and IMGCLS_HOME), the window on a private Xvfb display.
#
#   packaging/bundle-test.sh [BUNDLE_DIR [OUTPUT_DIR]]
#
# BUNDLE_DIR defaults to dist/imgcls-desktop, OUTPUT_DIR (screenshot, logs) to
# build/bundle-test. RUNS (default 3) sets how often the start-up times are measured; the
# medians are printed, not checked (this machine may be loaded). Needs Xvfb, xdotool and
# ImageMagick's `import` (Debian: apt-get install xvfb xdotool imagemagick).
set -euo pipefail

bundle=$(cd "${1:-dist/imgcls-desktop}" && pwd)
output=$(mkdir -p "${2:-build/bundle-test}" && cd "${2:-build/bundle-test}" && pwd)
runs=${RUNS:-3}
work=$(mktemp -d)
xvfb_pid=
app_pid=

cleanup() {
    [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null
    [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "bundle-test: FAILED: $*" >&2
    exit 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for tool in Xvfb xdotool import; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install xvfb xdotool imagemagick)"
done
[ -x "$bundle/imgcls" ] && [ -x "$bundle/imgcls-desktop" ] || fail "no bundle in $bundle (make bundle)"
for platform in xcb wayland offscreen; do
    [ -f "$bundle/_internal/PySide6/Qt/plugins/platforms/libq$platform.so" ] ||
        fail "Qt's $platform platform plugin is missing"
done
# --version and Help > About read these versions from the distributions' metadata.
for distribution in imgcls_desktop mxnet numpy; do
    compgen -G "$bundle/_internal/$distribution-*.dist-info" >/dev/null ||
        fail "the metadata of $distribution is missing"
done

mkdir -m 700 "$work/home" "$work/runtime"
# -displayfd: Xvfb picks a free display and writes its number, so parallel runs never clash.
Xvfb -displayfd 3 -screen 0 1600x1000x24 -nolisten tcp 3>"$work/display" 2>"$work/xvfb.log" &
xvfb_pid=$!
for _ in $(seq 100); do
    [ -s "$work/display" ] && break
    sleep 0.1
done
[ -s "$work/display" ] || fail "Xvfb did not start: $(cat "$work/xvfb.log")"
display=":$(cat "$work/display")"

# Only the bundle: no Python, venv or library path of the machine's own.
bundled() {
    env -i HOME="$work/home" XDG_RUNTIME_DIR="$work/runtime" IMGCLS_HOME="$work/imgcls-home" \
        PATH=/usr/bin:/bin LANG=C.UTF-8 DISPLAY="$display" "$@"
}

started=$(now_ms)

echo "== --version"
for program in imgcls imgcls-desktop; do
    version=$(bundled "$bundle/$program" --version)
    echo "$version"
    [[ $version =~ ^$program\ [0-9]+\.[0-9]+ ]] || fail "unexpected version line: $version"
done
times=()
for _ in $(seq "$runs"); do
    t0=$(now_ms)
    bundled "$bundle/imgcls" --version >/dev/null
    times+=($(($(now_ms) - t0)))
done
version_ms=$(printf '%s\n' "${times[@]}" | median)

echo "== the window opens ($runs starts)"
times=()
for run in $(seq "$runs"); do
    t0=$(now_ms)
    bundled "$bundle/imgcls-desktop" >"$output/window-$run.log" 2>&1 &
    app_pid=$!
    window=$(bundled timeout 60 xdotool search --sync --onlyvisible --name '^imgcls-desktop') ||
        fail "no window within 60 s; its log: $(cat "$output/window-$run.log")"
    times+=($(($(now_ms) - t0)))
    window=${window%%$'\n'*}
    if [ "$run" = 1 ]; then
        sleep 10 # let it paint and import MXNet in the background, as a user would see it
        bundled import -window root "$output/window.png"
    fi
    # Quit the way a user does (File > Quit, Ctrl+Q): the app must exit cleanly.
    bundled xdotool windowfocus --sync "$window" key ctrl+q
    exit_code=0
    timeout 60 tail --pid="$app_pid" -f /dev/null || fail "the window did not close within 60 s"
    wait "$app_pid" || exit_code=$?
    app_pid=
    [ "$exit_code" = 0 ] || fail "imgcls-desktop exited with $exit_code: $(cat "$output/window-$run.log")"
    # Like the GUI tests, any Qt warning (a missing icon, plugin or library) is a failure.
    [ ! -s "$output/window-$run.log" ] || fail "imgcls-desktop said: $(cat "$output/window-$run.log")"
done
window_ms=$(printf '%s\n' "${times[@]}" | median)

echo "== the desktop entry starts the bundle"
bundled XDG_DATA_HOME="$work/share" "$bundle/imgcls-desktop" --install-desktop-entry
grep "^Exec=" "$work/share/applications/imgcls-desktop.desktop" |
    grep -q -F "Exec=$bundle/imgcls-desktop" ||
    fail "the desktop entry does not start $bundle/imgcls-desktop"
[ -s "$work/share/icons/hicolor/scalable/apps/imgcls-desktop.svg" ] || fail "no icon installed"

echo "== the sample data set trains for one epoch"
cd "$work"
bundled "$bundle/imgcls" dataset sample shapes --per-class 20 --size 32
bundled "$bundle/imgcls" train --train shapes --output run \
    --set epochs=1 --set num_layers=18 --set image_shape=3,32,32 --set mini_batch_size=16

echo "== a folder is labelled"
bundled "$bundle/imgcls" predict run shapes --output labels.csv
images=$(find shapes -type f \( -name '*.png' -o -name '*.jpg' \) | wc -l)
labelled=$(($(wc -l <labels.csv) - 1))
[ "$labelled" = "$images" ] || fail "labels.csv has $labelled rows for $images images"

echo "== the model exports to ONNX (checked in ONNX Runtime)"
bundled "$bundle/imgcls" export run --format onnx --output model.onnx
[ -s model.onnx ] || fail "no model.onnx"

echo "bundle-test: passed in $((($(now_ms) - started) / 1000)) s" \
    "(imgcls --version: ${version_ms} ms, window shown: ${window_ms} ms; medians of $runs;" \
    "screenshot: $output/window.png)"
