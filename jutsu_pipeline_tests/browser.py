"""Headless Debian Chromium driven over the DevTools protocol: load a page, collect console errors,
evaluate scripts, take screenshots. No network: every switch that phones home is off."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from websockets.sync.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-port=0", "--remote-allow-origins=*"]
STARTUP_SECONDS = 120  # a generous bound for a loaded 2-core machine; never an assertion on speed


def chromium_path() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if not found:
        raise RuntimeError("Debian's chromium is not installed: `apt-get install chromium` (.ci/run does this)")
    return found


class Page:
    """One tab, attached with a flat session; messages not answering a call are kept as events."""

    def __init__(self, ws: ClientConnection, session: str) -> None:
        self._ws, self._session, self._ids = ws, session, itertools.count(1000)
        self.events: list[dict] = []

    def call(self, method: str, timeout: float = STARTUP_SECONDS, **params: object) -> dict:
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params, "sessionId": self._session}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = STARTUP_SECONDS) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            message = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            self.events.append(message)
            if message.get("method") == method:
                return message

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and failed loads seen so far."""
        self.call("Runtime.evaluate", expression="0")  # drain what is queued
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                                    for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                found.append(f"log {params['entry']['level']}: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return found

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))


@contextmanager
def open_page(url: str, width: int = 1280, height: int = 900) -> Iterator[Page]:
    """A fresh headless Chromium (its own profile dir) showing `url`, loaded."""
    with tempfile.TemporaryDirectory(prefix="jutsu-chromium-") as profile:
        process = subprocess.Popen([chromium_path(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + STARTUP_SECONDS
            while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
                if process.poll() is not None:
                    raise RuntimeError(f"chromium exited with {process.returncode}: {process.stderr.read()[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"chromium wrote no DevToolsActivePort within {STARTUP_SECONDS} s")
                time.sleep(0.1)
            port, path = port_file.read_text().split()[:2]
            with connect(f"ws://127.0.0.1:{port}{path}", max_size=2**28, open_timeout=STARTUP_SECONDS) as ws:
                ws.send(json.dumps({"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}}))
                target = _answer(ws, 1)["targetId"]
                ws.send(json.dumps({"id": 2, "method": "Target.attachToTarget",
                                    "params": {"targetId": target, "flatten": True}}))
                page = Page(ws, _answer(ws, 2)["sessionId"])
                for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
                    page.call(domain)
                page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                          mobile=False)
                page.call("Page.navigate", url=url)
                page.wait_for("Page.loadEventFired")
                yield page
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answer(ws: ClientConnection, call_id: int) -> dict:
    while True:
        message = json.loads(ws.recv(timeout=STARTUP_SECONDS))
        if message.get("id") == call_id:
            if "error" in message:
                raise RuntimeError(str(message["error"]))
            return message["result"]


# Per [data-chart] node: its canvases and how many sampled pixels are painted (not blank, not white).
CHART_PIXELS = """
Array.from(document.querySelectorAll('[data-chart]')).map(node => {
  const canvases = node.tagName === 'CANVAS' ? [node] : Array.from(node.querySelectorAll('canvas'));
  let painted = 0;
  const colours = new Set();
  for (const c of canvases) {
    if (!c.width || !c.height) continue;
    const copy = document.createElement('canvas');  // read a copy: the page's own contexts stay untouched
    copy.width = c.width; copy.height = c.height;
    const ctx = copy.getContext('2d', {willReadFrequently: true});
    ctx.drawImage(c, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4 * 5) {
      if (d[i + 3] && !(d[i] > 250 && d[i + 1] > 250 && d[i + 2] > 250)) { painted++; colours.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]); }
    }
  }
  return {name: node.dataset.chart, canvases: canvases.length, painted, colours: colours.size,
          width: node.clientWidth, height: node.clientHeight};
})
"""
