#!/usr/bin/env bash
# scripts/setup/ffmpeg.sh: make an FFmpeg available to mose (data/media decodes clips with it).
#
#   scripts/setup/ffmpeg.sh         prints the ffmpeg mose will use; fetches one if needed
#
# Order: $MOSE_FFMPEG if set; the ffmpeg on PATH; else the static build of the imageio-ffmpeg
# wheel (PyPI, version below, manylinux_2_28 x86_64; it ships ffmpeg only, no ffprobe),
# unpacked once into ${MOSE_CACHE:-~/.cache/mose}/ffmpeg/ffmpeg (a second run downloads
# nothing). The binary is checked by running `ffmpeg -version`. When PyPI cannot be
# reached, the script says so loudly and exits 0 without an ffmpeg: the tests that need
# one then skip, naming this script.
set -euo pipefail

CACHE=${MOSE_CACHE:-$HOME/.cache/mose}
WHEEL_VERSION=0.8.1
WHEEL=imageio_ffmpeg-${WHEEL_VERSION}-py3-none-manylinux_2_28_x86_64.whl
# sha256 of the wheel above, checked after the download (MOSE_FFMPEG_WHEEL_SHA256 overrides it).
WHEEL_SHA256=${MOSE_FFMPEG_WHEEL_SHA256:-050d6850601c3b3890bd2b28306f3b842b3daea390a561101174375a1c460bda}
DEST="$CACHE/ffmpeg"

info() { echo "setup-ffmpeg: $*" >&2; }
works() { "$1" -hide_banner -version >/dev/null 2>&1; }

if [ -n "${MOSE_FFMPEG:-}" ]; then
	works "$MOSE_FFMPEG" || { info "error: MOSE_FFMPEG=$MOSE_FFMPEG does not run (ffmpeg -version failed); fix: point it at a working ffmpeg or unset it"; exit 1; }
	echo "$MOSE_FFMPEG"
	exit 0
fi
if p=$(command -v ffmpeg 2>/dev/null) && works "$p"; then
	echo "$p"
	exit 0
fi
if [ -x "$DEST/ffmpeg" ] && works "$DEST/ffmpeg"; then
	echo "$DEST/ffmpeg"
	exit 0
fi
case "$(uname -s)-$(uname -m)" in
Linux-x86_64) ;;
*)
	info "WARNING: no ffmpeg on PATH and no static build for $(uname -s)-$(uname -m); install ffmpeg (the media tests skip)"
	exit 0
	;;
esac

mkdir -p "$DEST"
tmp=$(mktemp -d "$DEST/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
info "no ffmpeg on PATH; fetching the static build in imageio-ffmpeg $WHEEL_VERSION from PyPI (68 MB, once)"
PY=$(command -v python3 || command -v python || true)
fetched=0
if [ -n "$PY" ] && "$PY" -m pip --version >/dev/null 2>&1; then
	if timeout 600 "$PY" -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
		--python-version 3.11 "imageio-ffmpeg==$WHEEL_VERSION" -d "$tmp" >"$tmp/pip.log" 2>&1; then
		fetched=1
	fi
fi
if [ "$fetched" = 0 ] && command -v curl >/dev/null; then
	url=$(timeout 60 curl -fsSL "https://pypi.org/pypi/imageio-ffmpeg/$WHEEL_VERSION/json" 2>/dev/null |
		grep -o "https://[^\"]*$WHEEL" | head -1 || true)
	if [ -n "$url" ] && timeout 600 curl -fsSL -o "$tmp/$WHEEL" "$url"; then
		fetched=1
	fi
fi
if [ "$fetched" = 0 ] || [ ! -f "$tmp/$WHEEL" ]; then
	info "WARNING: could not fetch $WHEEL from PyPI (offline?) and no ffmpeg is on PATH: decoding clips will fail and the media tests skip; fix: install ffmpeg, or set MOSE_FFMPEG, or rerun online"
	exit 0
fi
if [ -n "$WHEEL_SHA256" ]; then
	echo "$WHEEL_SHA256  $tmp/$WHEEL" | sha256sum -c --quiet - || { info "error: $WHEEL: sha256 mismatch"; exit 1; }
fi
"$PY" - "$tmp/$WHEEL" "$tmp/ffmpeg" <<'PYEOF' || { info "error: could not unpack the ffmpeg binary from $WHEEL"; exit 1; }
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n.startswith("imageio_ffmpeg/binaries/ffmpeg-")]
    if len(names) != 1:
        sys.exit("want one ffmpeg binary in the wheel, found %r" % names)
    with z.open(names[0]) as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
PYEOF
chmod 755 "$tmp/ffmpeg"
works "$tmp/ffmpeg" || { info "error: the ffmpeg from $WHEEL does not run here"; exit 1; }
mv -f "$tmp/ffmpeg" "$DEST/ffmpeg"
info "ffmpeg: $DEST/ffmpeg ($("$DEST/ffmpeg" -hide_banner -version | head -1))"
echo "$DEST/ffmpeg"
