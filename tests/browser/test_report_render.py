# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render report.html in a real browser (Debian's headless chromium).

The unit tests read the markup; this one proves a browser draws it: the screenshot is
not a blank page and the DOM the browser built holds one row per host (and no script
element, even with a host named like one).

Chromium comes from Debian (`apt-get install chromium`); set CHROMIUM to use another
binary. Without one the test skips and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser

import pytest

from ansible_collections.m365ops.activation.plugins.plugin_utils.report_html import render_html

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "unit", "plugins", "plugin_utils", "fixtures", "report_html")
HOSTILE_HOST = "<script>document.title='pwned'</script>"


def find_chromium():
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="NO BROWSER CHECK: chromium not found on PATH (Debian: apt-get install -y chromium, "
           "or set CHROMIUM=/path/to/chromium); report.html was NOT rendered")


def run_chromium(tmp_path, *args):
    # A fresh profile each run and every background service off: the render must not
    # depend on, or reach, anything outside the page.
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           "--user-data-dir=%s" % profile] + list(args)
    env = dict(os.environ, HOME=str(tmp_path))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, "chromium failed (%s):\n%s" % (proc.returncode, proc.stderr[-2000:])
    return proc.stdout


def decode_png(data):
    """(width, height, set of distinct pixels) of an 8-bit RGB/RGBA PNG, pure Python."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if ctype == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif ctype == b"IDAT":
            idat.append(chunk)
        elif ctype == b"IEND":
            break
    width, height, depth, colour, _c, _f, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, "unexpected PNG format %r" % (header,)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    prev = bytearray(stride)
    pixels = set()
    for y in range(height):
        start = y * (stride + 1)
        ftype, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        # Undo the PNG scanline filters (RFC 2083, 6.3).
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        for x in range(0, stride, bpp):
            pixels.add(bytes(line[x:x + bpp]))
        prev = line
    return width, height, pixels


class Dom(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows, self.tags, self.title, self._in_title = [], [], "", False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self._in_title = tag == "title" and "svg" not in self.tags[-2:-1]
        if tag == "tr" and "host-row" in (attrs.get("class") or ""):
            self.rows.append(attrs.get("data-host"))

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title and not self.title:
            self.title = data


@pytest.fixture(scope="module")
def report():
    with open(os.path.join(FIXTURES, "remediate.json"), encoding="utf-8") as handle:
        data = json.load(handle)
    data["hosts"][HOSTILE_HOST] = {"unreachable": True, "error": "name resolution failed"}
    return data


@pytest.fixture
def page(tmp_path, report):
    path = tmp_path / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


def test_png_decoder_reads_a_known_image():
    # A 2x1 RGB image: one red and one white pixel, filter type 1 (Sub) on the row.
    row = bytes([1, 255, 0, 0, 0, 255, 255])
    ihdr = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(row)) + chunk(b"IEND", b"")
    assert decode_png(png) == (2, 1, {b"\xff\x00\x00", b"\xff\xff\xff"})


@needs_chromium
def test_screenshot_is_not_blank(tmp_path, page):
    shot = tmp_path / "report.png"
    run_chromium(tmp_path, "--window-size=1280,1400", "--screenshot=%s" % shot, page.as_uri())
    width, height, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (1280, 1400)
    # A blank or error page has a handful of colours; text, badges and SVG bars in the
    # report's palette (anti-aliased) give hundreds.
    assert len(pixels) > 100, "screenshot looks blank: %d distinct pixel values" % len(pixels)
    for colour in (b"\x1a\x7f\x37", b"\xcf\x22\x2e"):   # --ok bar (fixed), --bad bar (failed)
        assert any(p[:3] == colour for p in pixels), "chart colour #%s not drawn" % colour.hex()


@needs_chromium
def test_dom_holds_one_row_per_host_and_runs_no_script(tmp_path, page, report):
    dom = Dom()
    dom.feed(run_chromium(tmp_path, "--dump-dom", page.as_uri()))
    assert sorted(dom.rows) == sorted(report["hosts"])
    assert len(dom.rows) == len(set(dom.rows)) == len(report["hosts"]) == 8
    assert "script" not in dom.tags
    assert dom.title == "m365ops.activation remediate report"
