#!/usr/bin/env bash
# Extracts real test images from registry packages into .cache/test-images (not committed; their licences are
# those of the packages: ultralytics AGPL-3.0 assets bus.jpg/zidane.jpg, scikit-image BSD-3 astronaut/motorcycle).
set -euo pipefail
out="${1:-.cache/test-images}"
[ -f "$out/bus.jpg" ] && [ -f "$out/astronaut.png" ] && exit 0
mkdir -p "$out"
py="${PYTHON:-.venv/bin/python}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download -q --no-deps --only-binary=:all: -d "$tmp" ultralytics scikit-image 2>/dev/null
"$py" - "$tmp" "$out" <<'PY'
import pathlib, sys, zipfile
tmp, out = map(pathlib.Path, sys.argv[1:3])
want = {"ultralytics/assets/bus.jpg", "ultralytics/assets/zidane.jpg",
        "skimage/data/astronaut.png", "skimage/data/motorcycle_left.png"}
for whl in tmp.glob("*.whl"):
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            if name in want:
                (out / pathlib.Path(name).name).write_bytes(z.read(name))
PY
ls "$out"
