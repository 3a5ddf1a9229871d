#!/usr/bin/env bash
# Installs the Debian packages safewatch needs (tests and demo) when running as root and they are missing.
# Not root: prints what is missing and carries on (tests that need a missing piece skip with a reason).
set -euo pipefail
PKGS=(
  python3-venv                  # `python3 -m venv` on Debian's own python3
  ffmpeg                        # ffprobe for clip checks
  fonts-noto-cjk                # CJK text on annotated snapshots
  gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 python3-gi   # RTSP test server (runs under /usr/bin/python3)
  gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  redis-server                  # event bus tests when no Redis is running
  mosquitto                     # MQTT tests: private brokers on free ports (mosquitto, mosquitto_passwd)
  openssl                       # MQTT TLS test certificates
  chromium chromium-driver      # web UI tests
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: not root; missing Debian packages: ${missing[*]} (some tests will skip)" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
