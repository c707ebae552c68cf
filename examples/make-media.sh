#!/usr/bin/env bash
# make-media.sh: rebuilds examples/media/clip.mp4, the sample video for dropcast.
#
# Usage:  bash examples/make-media.sh      (from any directory; writes examples/media/clip.mp4)
#
# What it makes: a 5 s vertical 720x1280, 30 fps MP4: H.264 (main profile, yuv420p) over a
# slowly turning sunset gradient with ffmpeg's moving `testsrc2` pattern in the middle, plus
# AAC stereo audio (a soft A4+E5 sine chord, faded in and out). `+faststart` puts the moov box
# before mdat. No fonts are needed. Flags aim at a reproducible file: fixed gradient seed,
# single-threaded x264, bitexact muxer/encoders, no metadata. (A different ffmpeg/x264
# version may still produce different bytes, so the clip is committed, not rebuilt in CI.)
#
# The caption beside it, examples/media/clip.yaml, is hand-written (see README "Caption reference").
# Try it:  cp examples/media/* inbox/
#
# Needs ffmpeg. On Debian/Ubuntu:  apt-get update && apt-get install -y ffmpeg
# (made with Debian 12's ffmpeg 5.1 + libx264).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/media/clip.mp4"
mkdir -p "$here/media"

command -v ffmpeg >/dev/null || {
    echo "make-media.sh: ffmpeg not found; on Debian: apt-get install -y ffmpeg" >&2
    exit 1
}

ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "gradients=s=720x1280:r=30:d=5:n=3:c0=0xff7e5f:c1=0xfeb47b:c2=0x6a3093:speed=0.015:seed=42" \
    -f lavfi -i "testsrc2=s=480x480:r=30:d=5" \
    -f lavfi -i "aevalsrc=0.20*sin(2*PI*440*t)+0.12*sin(2*PI*659.25*t):s=44100:c=stereo:d=5" \
    -filter_complex "[0:v][1:v]overlay=x=(W-w)/2:y=(H-h)/2:format=auto,format=yuv420p[v];[2:a]afade=t=in:d=0.5,afade=t=out:st=4.5:d=0.5[a]" \
    -map "[v]" -map "[a]" \
    -c:v libx264 -profile:v main -preset medium -crf 36 -g 60 -threads 1 -x264-params "threads=1:lookahead-threads=1" \
    -pix_fmt yuv420p \
    -c:a aac -b:a 64k -ar 44100 \
    -t 5 \
    -movflags +faststart \
    -fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1 -map_chapters -1 \
    "$out"

# Check: the whole file decodes without errors, and its top-level MP4 boxes tile it exactly.
ffmpeg -hide_banner -v error -xerror -i "$out" -f null - </dev/null
if command -v python3 >/dev/null; then
    python3 - "$out" <<'PY'
import struct, sys

path = sys.argv[1]
data = open(path, "rb").read()
pos, boxes = 0, []
while pos < len(data):
    if len(data) - pos < 8:
        sys.exit(f"{path}: {len(data) - pos} trailing bytes at {pos}")
    size, kind = struct.unpack(">I4s", data[pos:pos + 8])
    if size == 1:
        size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
    elif size == 0:
        size = len(data) - pos
    if size < 8 or pos + size > len(data):
        sys.exit(f"{path}: box {kind!r} at {pos} has bad size {size}")
    boxes.append(f"{kind.decode('latin-1')}@{pos}+{size}")
    pos += size
kinds = [b.split("@")[0] for b in boxes]
if kinds[0] != "ftyp" or "moov" not in kinds or "mdat" not in kinds:
    sys.exit(f"{path}: unexpected box layout {kinds}")
if kinds.index("moov") > kinds.index("mdat"):
    sys.exit(f"{path}: moov after mdat (no faststart)")
print("boxes tile the file:", " ".join(boxes))
PY
fi

echo "wrote $out ($(stat -c %s "$out") bytes)"
