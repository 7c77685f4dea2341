"""Looking at a report in headless Chromium: does every table and figure fit the page?

A reviewer reads report.html in a browser window, commonly 1,280 px wide; a table wider
than the page's column (a long reason text, a points table) makes the page scroll
sideways. `overflowing` loads the report in an iframe of that width, from a local HTTP
server (a file:// iframe is a foreign origin the measuring script may not read), and
returns one line per table or image whose right edge passes the right edge of the
report's `main` column, plus one if the page scrolls sideways. Empty means it all fits.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

__all__ = ["chromium", "overflowing"]

_MEASURE = """<!doctype html><html><body style="margin:0">
<iframe id="f" src="report.html" style="width:%dpx;height:3000px;border:0"></iframe>
<pre id="out">pending</pre>
<script>
document.getElementById("f").addEventListener("load", () => {
  const d = document.getElementById("f").contentDocument;
  const limit = d.querySelector("main").getBoundingClientRect().right;
  const bad = [];
  d.querySelectorAll("table, img").forEach((el, i) => {
    const r = el.getBoundingClientRect();
    const where = (el.closest("section") || {id: "page"}).id;
    if (r.right > limit + 0.5) bad.push(`${el.tagName.toLowerCase()} ${i} in #${where}: right edge ${Math.round(r.right)} px > ${Math.round(limit)} px`);
  });
  const page = d.documentElement;
  if (page.scrollWidth > page.clientWidth) bad.push(`the page scrolls sideways: ${page.scrollWidth} px > ${page.clientWidth} px`);
  document.getElementById("out").textContent = "RESULT:" + JSON.stringify(bad);
});
</script></body></html>
"""


def chromium() -> str:
    """The browser, or a failure in CI / a skip elsewhere that says how to install it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium not installed: apt-get install chromium to run the browser check")
    return found


def overflowing(report_dir: Path, *, width: int = 1280) -> list[str]:
    """Tables and images of `report_dir/report.html` wider than its page at `width` px."""
    browser = chromium()
    (report_dir / "measure.html").write_text(_MEASURE % width, encoding="utf-8")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(report_dir), **kwargs)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/measure.html"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={report_dir / 'profile'}", f"--window-size={width + 40},3200",
        "--virtual-time-budget=20000",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ]  # fmt: skip
    try:
        dom = subprocess.run(
            [browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
        )
    finally:
        server.shutdown()
    assert dom.returncode == 0, dom.stderr[-2000:]
    marker = dom.stdout.find("RESULT:")
    assert marker >= 0, "the measuring script did not run: " + dom.stdout[-500:]
    end = dom.stdout.index("</pre>", marker)
    found: list[str] = json.loads(
        dom.stdout[marker + len("RESULT:") : end].replace("&gt;", ">").replace("&amp;", "&")
    )
    return found
