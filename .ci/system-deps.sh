#!/usr/bin/env bash
# Install the shared libraries that Qt (PySide6 wheels, QtMultimedia) needs, when missing.
set -euo pipefail
need=()
for pair in libEGL.so.1:libegl1 libGL.so.1:libgl1 libfontconfig.so.1:libfontconfig1 \
            libxkbcommon.so.0:libxkbcommon0 libglib-2.0.so.0:libglib2.0-0 \
            libdbus-1.so.3:libdbus-1-3 libX11.so.6:libx11-6 libpulse.so.0:libpulse0 \
            libasound.so.2:libasound2 fonts-dejavu-core:fonts-dejavu-core; do
  lib=${pair%%:*} pkg=${pair##*:}
  if [ "$lib" = fonts-dejavu-core ]; then
    fc-list 2>/dev/null | grep -qi dejavu || need+=("$pkg")
  elif ! ldconfig -p | grep -q "$lib"; then
    need+=("$pkg")
  fi
done
if [ ${#need[@]} -gt 0 ]; then
  echo "[system-deps] installing ${need[*]}" >&2
  apt-get update -qq >&2 && apt-get install -y -qq "${need[@]}" >&2
fi
