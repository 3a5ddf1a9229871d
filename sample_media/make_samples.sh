#!/usr/bin/env bash
# Regenerates the sample clips from Debian packages (no other downloads).
#   vtest.mp4     — OpenCV's vtest.avi (package opencv-doc), H.264, 768x576, 10 fps, GOP 2 s, no B-frames
#   citycc0.mp4   — Kivy's cityCC0.mpg (package python-kivy-examples), night skyline without people (negative clip)
# Needs ffmpeg (Debian package). Run from anywhere: ./sample_media/make_samples.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download opencv-doc python-kivy-examples >/dev/null
for deb in *.deb; do dpkg-deb -x "$deb" root; done
x264=(-c:v libx264 -preset slow -crf 30 -pix_fmt yuv420p -profile:v high -bf 0 -movflags +faststart -an -map_metadata -1 -fflags +bitexact -flags:v +bitexact)
ffmpeg -loglevel error -y -i root/usr/share/doc/opencv-doc/examples/data/vtest.avi \
  "${x264[@]}" -g 20 -keyint_min 20 -sc_threshold 0 -r 10 "$here/vtest.mp4"
ffmpeg -loglevel error -y -i root/usr/share/kivy-examples/widgets/cityCC0.mpg \
  -vf "scale=640:-2" "${x264[@]}" -g 50 -keyint_min 50 -sc_threshold 0 "$here/citycc0.mp4"
cp root/usr/share/doc/opencv-doc/opencv4/html/HDRtoneMapping_candleSample.jpg "$here/candle.jpg"
cp root/usr/share/doc/opencv-doc/opencv4/html/person_multi_det.jpg "$here/person_multi_det.jpg"
ls -l "$here"
