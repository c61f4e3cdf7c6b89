"""Render a demo ``report.html`` in headless Chromium and check the screenshot is non-trivial.

    python bench/screenshot_report.py runs/demo/report.html [--png runs/demo/report.png]

Needs Debian's ``chromium`` (``apt-get update && apt-get install -y chromium``). The page must
be self-contained: Chromium runs with networking features off and a fresh profile. Checks:
the PNG exists, has the requested size, and is not blank — at least ``--min-colours`` distinct
colours and at least ``--min-ink`` of the pixels differ from the page background. Exit status
0 when every check passes; the figures are printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1280, 2400)


def find_chromium() -> str:
    """Path of a Chromium binary, or exit with how to install one."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    sys.exit("chromium not found: apt-get update && apt-get install -y chromium")


def screenshot(
    html: Path, png: Path, window: tuple[int, int] = WINDOW, timeout: float = 120.0
) -> None:
    """Headless Chromium screenshot of ``html`` into ``png``."""
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="onerec-chromium-") as profile:
        command = [
            find_chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={png.resolve()}",
            f"--window-size={window[0]},{window[1]}",
            html.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if not png.is_file():
        sys.exit(
            f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr.strip()[-500:]}"
        )


def read_png_rgb(path: Path) -> tuple[int, int, np.ndarray]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG: ``(width, height, pixels [h, w, 3])``."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(
            f"unsupported PNG (depth {depth}, colour type {colour}, interlace {interlace})"
        )
    channels = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8)
    stride = width * channels
    lines = raw.reshape(height, stride + 1)
    image = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        filter_type, line = int(lines[y, 0]), lines[y, 1:]
        if filter_type == 0:
            row = line.copy()
        elif filter_type == 1:  # Sub: running sum per channel, modulo 256
            sums = np.cumsum(line.reshape(width, channels).astype(np.int64), axis=0) % 256
            row = sums.astype(np.uint8).reshape(-1)
        elif filter_type == 2:  # Up
            row = line + previous
        else:  # Average / Paeth depend on the pixel to the left: plain loop
            row = _unfilter_sequential(filter_type, line, previous, channels)
        image[y] = row
        previous = row
    pixels = image.reshape(height, width, channels)[:, :, :3]
    return width, height, pixels


def _unfilter_sequential(
    kind: int, line: np.ndarray, previous: np.ndarray, channels: int
) -> np.ndarray:
    out = bytearray(line.tobytes())
    up_row = previous.tobytes()
    for i in range(len(out)):
        left = out[i - channels] if i >= channels else 0
        up = up_row[i]
        if kind == 3:
            out[i] = (out[i] + (left + up) // 2) & 0xFF
        else:
            corner = up_row[i - channels] if i >= channels else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            out[i] = (out[i] + pred) & 0xFF
    return np.frombuffer(bytes(out), dtype=np.uint8)


def png_stats(path: Path, sample_step: int = 4) -> dict[str, float]:
    """Size, distinct colours and the share of non-background pixels (sampled grid)."""
    width, height, pixels = read_png_rgb(path)
    sample = pixels[::sample_step, ::sample_step].reshape(-1, 3)
    background = pixels[0, 0]
    colours = len(np.unique(sample, axis=0))
    ink = float(np.any(sample != background, axis=1).mean())
    return {
        "width": width,
        "height": height,
        "colours": colours,
        "ink_fraction": ink,
        "bytes": path.stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("report", type=Path, help="report.html written by `onerec demo`")
    parser.add_argument(
        "--png", type=Path, default=None, help="output PNG (default: beside the report)"
    )
    parser.add_argument("--height", type=int, default=WINDOW[1], help="window height in pixels")
    parser.add_argument("--min-colours", type=int, default=16)
    parser.add_argument("--min-ink", type=float, default=0.03)
    args = parser.parse_args()
    if not args.report.is_file():
        sys.exit(f"{args.report} does not exist; run `onerec demo` first")
    png = args.png or args.report.with_name("report.png")
    window = (WINDOW[0], args.height)
    screenshot(args.report, png, window)
    stats = png_stats(png)
    checks = {
        "size": (stats["width"], stats["height"]) == window,
        "colours": stats["colours"] >= args.min_colours,
        "ink": stats["ink_fraction"] >= args.min_ink,
    }
    print(json.dumps({"png": str(png), **stats, "checks": checks}))
    if not all(checks.values()):
        sys.exit(f"screenshot looks blank or wrong: {checks}")


if __name__ == "__main__":
    main()
