"""report.html in a real browser: headless Chromium, no network, every table and image rendered.

Skipped when Chromium is absent, unless EVALSUITE_REQUIRE_CHROMIUM=1 (CI sets it after installing the
Debian package ``chromium``) turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# A wrapper page inspects the report in an iframe, so report.html itself is tested exactly as written.
WRAPPER = """<!DOCTYPE html><html><body><div id="result">pending</div>
<iframe id="f" src="report.html" width="1280" height="900"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {
  var out = document.getElementById("result");
  try {
    var d = this.contentDocument;
    var imgs = Array.prototype.slice.call(d.images);
    var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
    out.textContent = "RESULT images=" + imgs.length + " loaded=" + ok +
      " tables=" + d.querySelectorAll("table").length + " rows=" + d.querySelectorAll("tbody tr").length +
      " failed=" + (d.getElementById("failed") ? 1 : 0) + " title=" + d.title.length;
  } catch (e) { out.textContent = "RESULT error " + e; }
});
</script></body></html>
"""


@pytest.fixture
def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "chromium not found (apt-get install -y chromium)"
        if os.environ.get("EVALSUITE_REQUIRE_CHROMIUM") == "1":
            pytest.fail(msg + "; EVALSUITE_REQUIRE_CHROMIUM=1 requires it")
        pytest.skip(msg)
    return exe


def _run(exe: str, page: Path, profile: Path, netlog: Path) -> str:
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--allow-file-access-from-files",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--log-net-log={netlog}",
        "--run-all-compositor-stages-before-draw",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page asked for; Chromium's own background calls carry no origin and are left out."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    params = [e.get("params") or {} for e in log["events"] if e["type"] == start]
    return [p["url"] for p in params if "url" in p and p.get("initiator") != "not an origin"]


def test_report_renders_offline_in_chromium(chromium, report_dir, tmp_path):
    exe = chromium
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(report_dir / "report.html", site / "report.html")
    (site / "check.html").write_text(WRAPPER, encoding="utf-8")
    # Positive control: the same netlog check must see a page that does reach out.
    (site / "leaky.html").write_text('<img src="https://example.invalid/x.png">', encoding="utf-8")

    dom = _run(exe, site / "check.html", tmp_path / "profile", tmp_path / "net.json")
    m = re.search(r"RESULT ([^<]*)", dom)
    assert m, dom[:2000]
    got = dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv)
    assert got.get("images") == "5" and got["loaded"] == "5", m.group(1)
    # every table the file holds is laid out by the browser (headline, models, one per group and OOD set)
    tables = (site / "report.html").read_text(encoding="utf-8").count("<table")
    assert tables >= 6 and got["tables"] == str(tables), m.group(1)
    assert int(got["rows"]) >= 14 and got["failed"] == "1", m.group(1)
    external = [u for u in _page_requests(tmp_path / "net.json") if not u.startswith(("file:", "data:"))]
    assert external == []

    _run(exe, site / "leaky.html", tmp_path / "profile2", tmp_path / "net2.json")
    assert "https://example.invalid/x.png" in _page_requests(tmp_path / "net2.json")
