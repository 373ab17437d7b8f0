"""The HTML report in a real browser: headless Chromium, driven over the DevTools protocol.

Chromium is started with ``--remote-debugging-pipe`` (commands on fd 3, replies and events on fd 4,
JSON messages separated by NUL), so only the standard library is needed. The page is loaded from a
file with the network unused: the test checks the page renders (a screenshot that is not blank and
shows the charts' colours), that every section, chart and table is in the DOM with a size, that the
console stays clean (no errors, no exceptions, no failed loads), that no request leaves the file,
and that it prints to PDF. A control page with a console error, an exception and an http request
proves those checks can fail.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from typing import Any

import numpy as np
import pytest

import smartfunnel as sf

CHROMIUM = next(
    (p for p in map(shutil.which, ["chromium", "chromium-browser", "google-chrome"]) if p), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian's chromium; .ci/setup installs it)"
)

SECTIONS = ["summary", "funnel", "forecast", "backtest", "scorecards", "coaching", "stalled",
            "quality", "assumptions"]  # fmt: skip
CHARTS = ["chart-funnel", "chart-time-in-stage", "chart-forecast", "chart-backtest",
          "chart-scorecard"]  # fmt: skip
TABLES = ["table-funnel", "table-forecast", "table-backtest-metrics", "table-backtest",
          "table-rep-summary", "table-scorecard", "table-focus", "table-stalled", "table-quality",
          "table-assumptions"]  # fmt: skip


class Chromium:
    """Headless Chromium over the DevTools pipe: send commands, collect events."""

    def __init__(self, profile: str, timeout: float = 60.0):
        self.timeout = timeout
        cmd_r, self._cmd_w = os.pipe()
        self._ev_r, ev_w = os.pipe()
        # Move the child's ends above the low fds so the redirections to 3 and 4 cannot clash.
        hi_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
        hi_w = fcntl.fcntl(ev_w, fcntl.F_DUPFD, 10)
        os.close(cmd_r)
        os.close(ev_w)
        args = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # root in a container
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--mute-audio",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$@" 3<&{hi_r} 4>&{hi_w} {hi_r}<&- {hi_w}>&-', "chromium", *args],
            pass_fds=(hi_r, hi_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(hi_r)
        os.close(hi_w)
        self._next = 0
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._ev_r, 1 << 20)
            if not chunk:
                self._messages.put(None)
                return
            buf += chunk
            *done, buf = buf.split(b"\0")
            for raw in done:
                self._messages.put(json.loads(raw))

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None):
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._get(deadline, method)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        for e in self.events:
            if e.get("method") == method and e.get("sessionId") == session:
                return e
        deadline = time.monotonic() + self.timeout
        while True:
            e = self._get(deadline, method)
            self.events.append(e)
            if e.get("method") == method and e.get("sessionId") == session:
                return e

    def _get(self, deadline: float, what: str) -> dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"chromium: no answer to {what} in {self.timeout:.0f} s")
        try:
            msg = self._messages.get(timeout=left)
        except queue.Empty:
            raise TimeoutError(f"chromium: no answer to {what} in {self.timeout:.0f} s") from None
        if msg is None:
            err = b"".join(self._stderr).decode(errors="replace")[-3000:]
            raise RuntimeError(f"chromium exited while waiting for {what}:\n{err}")
        return msg

    def open(self, url: str, width: int = 1200, height: int = 1400) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        return Page(self, session)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)


class Page:
    def __init__(self, browser: Chromium, session: str):
        self.browser = browser
        self.session = session

    def evaluate(self, expression: str) -> Any:
        r = self.browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
        )
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluate failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def screenshot(self) -> np.ndarray:
        """The whole page as an RGB float array (decoded from Chromium's PNG by matplotlib)."""
        import matplotlib.image

        size = self.browser.send("Page.getLayoutMetrics", session=self.session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        r = self.browser.send(
            "Page.captureScreenshot",
            {"format": "png", "clip": clip, "captureBeyondViewport": True},
            session=self.session,
        )
        image = matplotlib.image.imread(io.BytesIO(base64.b64decode(r["data"])), format="png")
        return np.asarray(image)[..., :3]

    def pdf(self) -> bytes:
        r = self.browser.send("Page.printToPDF", {"printBackground": True}, session=self.session)
        return base64.b64decode(r["data"])

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, log errors, requests off the file."""
        out = []
        for e in self.browser.events:
            if e.get("sessionId") != self.session:
                continue
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p['args']]}")
            elif m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry']['text']}")
            elif m == "Network.requestWillBeSent":
                url = p["request"]["url"]
                if not url.startswith(("file://", "data:", "about:")):
                    out.append(f"request: {url}")
        return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Chromium(str(tmp_path_factory.mktemp("chromium-profile")))
    yield b
    b.close()


@pytest.fixture(scope="module")
def report_page(browser, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    sample = sf.datasets.sample()
    report = sf.build_report(
        sample.log,
        as_of="2025-03-31",
        period=("2025-04-01", "2025-06-30"),
        target=1e6,
        backtest_periods=2,
    )
    report.save(path)
    return report, browser.open(path.as_uri())


def test_report_renders_every_section_chart_and_table(report_page):
    report, page = report_page
    ids = json.dumps(SECTIONS + CHARTS + [c + "-svg" for c in CHARTS] + TABLES)
    found = page.evaluate(
        """(ids => {
          const box = id => { const e = document.getElementById(id);
            if (!e) return null; const r = e.getBoundingClientRect();
            return {tag: e.tagName.toLowerCase(), w: r.width, h: r.height,
                    rows: e.tBodies ? e.tBodies[0].rows.length : null}; };
          return Object.fromEntries(ids.map(id => [id, box(id)]));
        })("""
        + ids
        + ")"
    )
    for sid in SECTIONS:
        assert found[sid] and found[sid]["h"] > 0, sid
    for cid in CHARTS:
        assert found[cid]["tag"] == "figure"
        svg = found[cid + "-svg"]
        assert svg["tag"] == "svg" and svg["w"] > 300 and svg["h"] > 150, (cid, svg)
    for tid in TABLES:
        assert found[tid]["tag"] == "table" and found[tid]["w"] > 0, tid
    assert found["table-funnel"]["rows"] == len(report.funnel)
    assert found["table-stalled"]["rows"] == len(report.stalled)
    assert found["table-scorecard"]["rows"] == len(report.scorecard)
    # The forecast cells the browser shows carry the Forecast object's quantiles.
    shown = page.evaluate(
        "[...document.querySelectorAll('#table-forecast tbody td[data-value]')]"
        ".map(td => [td.cellIndex, Number(td.dataset.value)])"
    )
    heads = page.evaluate(
        "[...document.querySelectorAll('#table-forecast thead th')].map(th => th.dataset.column)"
    )
    values = {heads[i]: v for i, v in shown}
    q = report.forecast.quantiles([0.1, 0.5, 0.9])
    assert (values["P10"], values["P50"], values["P90"]) == (q[0.1], q[0.5], q[0.9])


def test_report_screenshot_is_not_blank_and_shows_the_charts(report_page):
    _, page = report_page
    image = page.screenshot()
    height, width, _ = image.shape
    assert width == 1200 and height > 2000  # the whole page, every section
    non_white = (image < 0.95).any(axis=-1).mean()
    assert 0.03 < non_white < 0.9, non_white
    assert image.std() > 0.05
    # The charts' bars and curves: pixels of the report's blue (#4C72B0).
    blue = np.abs(image - np.array([0x4C, 0x72, 0xB0]) / 255.0).max(axis=-1) < 0.06
    assert blue.mean() > 0.002, blue.mean()


def test_report_console_is_clean_and_nothing_leaves_the_file(report_page):
    _, page = report_page
    assert page.problems() == []
    requests = [
        e["params"]["request"]["url"]
        for e in page.browser.events
        if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == page.session
    ]
    assert requests and all(u.startswith(("file://", "data:")) for u in requests), requests


def test_report_prints(report_page):
    _, page = report_page
    pdf = page.pdf()
    assert pdf.startswith(b"%PDF")
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert pages >= 2


def test_the_checks_catch_a_broken_page(browser, tmp_path):
    """Control: the same checks flag console errors, exceptions and network requests."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><p>x</p>"
        "<img src='http://127.0.0.1:9/tracker.png'>"
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    page = browser.open(bad.as_uri())
    problems = page.problems()
    assert any(p.startswith("console.error") and "boom" in p for p in problems), problems
    assert any(p.startswith("exception") for p in problems), problems
    assert any(p == "request: http://127.0.0.1:9/tracker.png" for p in problems), problems
    blank = page.screenshot()
    assert (blank < 0.95).any(axis=-1).mean() < 0.03  # and a near-empty page reads as blank


def test_wide_tables_scroll_inside_their_section_at_1280px(browser, shared_data, tmp_path):
    # The Salesforce sample's long stage names made the scorecard wider than the page.
    imp = sf.imports.read(shared_data / "salesforce-dev-org-sample")
    path = tmp_path / "salesforce.html"
    sf.build_report(imp.log, as_of=imp.as_of, issues=imp.quality).save(path)
    page = browser.open(path.as_uri(), width=1280, height=900)
    got = page.evaluate(
        """(() => {
          const out = {page: [document.documentElement.scrollWidth, window.innerWidth], t: []};
          for (const t of document.querySelectorAll('table')) {
            const box = t.parentElement.getBoundingClientRect();
            const sec = t.closest('section').getBoundingClientRect();
            out.t.push([t.id, box.left >= sec.left - 0.5 && box.right <= sec.right + 0.5,
                        t.scrollWidth > t.parentElement.clientWidth]);
          }
          return out;
        })()"""
    )
    width, viewport = got["page"]
    assert width <= viewport, "the page scrolls sideways"
    assert all(inside for _, inside, _ in got["t"]), got["t"]
    wide = {name for name, _, over in got["t"] if over}
    assert "table-scorecard" in wide  # wider than the section: it scrolls inside it
