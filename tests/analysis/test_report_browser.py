"""The HTML report in a real browser: headless Chromium renders it with no broken image
and with every text as written.

The report is served by a real HTTP server on 127.0.0.1; a same-origin checker page loads
it in an iframe, counts images that did not decode (``naturalWidth == 0``) and elements
that format text (emphasis, code, links), and reads what each paragraph, bullet and cell
shows; Chromium's ``--dump-dom`` returns the verdict. A screenshot of the report must not
be blank.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from sweeplab.analysis.report import (
    Bullets,
    Figure,
    Heading,
    Paragraph,
    Report,
    Table,
    write_report,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]

CHECKER = """<!DOCTYPE html><html><body><pre id="verdict">pending</pre>
<iframe id="r" src="report.html" style="width:1200px;height:800px"></iframe>
<script>
document.getElementById('r').onload = function () {
  var imgs = Array.from(this.contentDocument.images);
  var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; });
  var doc = this.contentDocument;
  var shown = function (sel) {
    return Array.from(doc.querySelectorAll(sel)).map(function (e) { return e.textContent; });
  };
  document.getElementById('verdict').textContent = JSON.stringify(
    {images: imgs.length, broken: broken.length,
     tables: doc.querySelectorAll('table').length, title: doc.title,
     formatted: doc.querySelectorAll('em, strong, i, b, code, a, s, del, pre').length,
     paragraphs: shown('p'), bullets: shown('li'), cells: shown('td')});
};
</script></body></html>"""


@pytest.fixture()
def served(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    profile = tmp / "chrome-profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


CONDITION = "a_b*c"
NAMED = f"{CONDITION} beats d*e; _lead_ and **bold** stay as written"


def _report(out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from sweeplab.analysis.style import new_figure, save_figure

    (out / "figs").mkdir()
    fig, ax = new_figure()
    ax.plot(np.arange(10), np.arange(10) ** 2)
    save_figure(fig, out / "figs" / "curve")
    report = Report("A report").add(
        Heading("Numbers"), Paragraph("One table, one figure."), Paragraph(NAMED),
        Bullets((NAMED, "<b>not bold</b> & `not code`")),
        Table(("condition", "angle"), (("lp p=1.5, L=2", "3.1 ± 0.2"), (CONDITION, "1.0"))),
        Figure("figs/curve.png", "A curve"))
    return write_report(report, out)[1]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_renders_in_chromium_without_broken_images(served):
    root, url = served
    page = _report(root)
    assert "data:image/png;base64," in page.read_text()
    (root / "check.html").write_text(CHECKER)
    proc = _chromium("--virtual-time-budget=10000", "--dump-dom", f"{url}/check.html", tmp=root)
    match = re.search(r'<pre id="verdict">(.*?)</pre>', proc.stdout)
    assert match, proc.stderr[-2000:]
    verdict = json.loads(html.unescape(match.group(1)))
    assert verdict == {"images": 1, "broken": 0, "tables": 1, "title": "A report",
                       "formatted": 0,
                       "paragraphs": ["One table, one figure.", NAMED],
                       "bullets": [NAMED, "<b>not bold</b> & `not code`"],
                       "cells": ["lp p=1.5, L=2", "3.1 ± 0.2", CONDITION, "1.0"]}

    shot = root / "shot.png"
    _chromium("--window-size=1200,1600", f"--screenshot={shot}", f"{url}/report.html", tmp=root)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[0] >= 1000 and pixels.std() > 0.01  # not a blank page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_a_missing_image_is_caught_by_the_checker(served):
    """The checker can fail: a report whose image does not decode is reported broken."""
    root, url = served
    page = _report(root)
    text = page.read_text()
    start = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    page.write_text(text[:start] + "AAAA" + text[start + 200:])
    (root / "check.html").write_text(CHECKER)
    proc = _chromium("--virtual-time-budget=10000", "--dump-dom", f"{url}/check.html", tmp=root)
    verdict = json.loads(html.unescape(re.search(r'<pre id="verdict">(.*?)</pre>',
                                                 proc.stdout).group(1)))
    assert verdict["broken"] == 1
