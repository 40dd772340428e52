"""A small Chrome DevTools Protocol client for tests: open a page in headless Chromium, collect
console errors, exceptions, failed loads and broken images, and take a full-page screenshot.

Standard library + ``websocket-client`` only (no node, no playwright). Chromium is Debian's
``chromium`` package (``./install.sh --test`` installs it where apt-get can).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--remote-allow-origins=*",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
]


def find_browser() -> str | None:
    """Path of a Chromium binary ($SIMGEN_CHROMIUM first), or None."""
    env = os.environ.get("SIMGEN_CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    images: int = 0
    ready: bool = False
    title: str = ""

    @property
    def problems(self) -> list[str]:
        return [
            *(f"console error: {x}" for x in self.console_errors),
            *(f"exception: {x}" for x in self.exceptions),
            *(f"failed load: {x}" for x in self.failed_loads),
            *(f"broken image: {x}" for x in self.broken_images),
        ]


class Browser:
    """Headless Chromium with a fresh profile; use as a context manager."""

    def __init__(self, exe: str, timeout: float = 60.0) -> None:
        self.exe, self.timeout = exe, timeout
        self.profile = tempfile.mkdtemp(prefix="simgen-chromium-")
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.port = self._port()
        self._ids = itertools.count(1)
        self.ws: Any = None

    def _port(self) -> int:
        marker = Path(self.profile) / "DevToolsActivePort"
        t_end = time.monotonic() + self.timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"chromium exited with {self.proc.returncode}: {err[-2000:]}")
            if marker.exists():
                lines = marker.read_text().split()
                if lines:
                    return int(lines[0])
            time.sleep(0.05)
        raise RuntimeError("chromium did not open its DevTools port in time")

    def _page_ws(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as r:
            targets = json.loads(r.read())
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise RuntimeError(f"no page target among {targets}")
        return str(pages[0]["webSocketDebuggerUrl"])

    def __enter__(self) -> Browser:
        import websocket

        self.ws = websocket.create_connection(
            self._page_ws(), timeout=self.timeout, suppress_origin=True, enable_multithread=False
        )
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.ws is not None:
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            if self.proc.stderr:
                self.proc.stderr.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- protocol -------------------------------------------------------------------------------

    def call(self, method: str, events: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
        """Send a command; events that arrive meanwhile are appended to ``events``."""
        i = next(self._ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))
            if "method" in msg:
                events.append(msg)

    def wait_for(self, method: str, events: list[dict[str, Any]]) -> None:
        t_end = time.monotonic() + self.timeout
        while not any(e["method"] == method for e in events):
            if time.monotonic() > t_end:
                raise RuntimeError(f"timed out waiting for {method}")
            events.append(json.loads(self.ws.recv()))

    def check_page(self, url: str, screenshot: Path | None = None) -> PageReport:
        """Load ``url``; report console errors, exceptions, failed loads and broken images;
        optionally save a full-page PNG screenshot."""
        ev: list[dict[str, Any]] = []
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable", ev)
        self.call("Page.navigate", ev, url=url)
        self.wait_for("Page.loadEventFired", ev)
        js = (
            "JSON.stringify({broken: Array.from(document.images)"
            ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt || i.src.slice(0, 60)),"
            " images: document.images.length, title: document.title,"
            " ready: document.body && document.body.getAttribute('data-report-ready') === '1'})"
        )
        res = self.call("Runtime.evaluate", ev, expression=js, returnByValue=True)
        info = json.loads(res["result"]["value"])
        rep = PageReport(
            broken_images=info["broken"],
            images=info["images"],
            ready=info["ready"],
            title=info["title"],
        )
        if screenshot is not None:
            self._screenshot(screenshot, ev)
        for e in ev:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                rep.console_errors.append(
                    " ".join(
                        str(a.get("value", a.get("description", ""))) for a in p.get("args", [])
                    )
                )
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                rep.exceptions.append(
                    str(d.get("exception", {}).get("description") or d.get("text"))
                )
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                rep.console_errors.append(str(p["entry"].get("text")))
            elif m == "Network.loadingFailed" and not p.get("canceled"):
                rep.failed_loads.append(str(p.get("errorText")))
        return rep

    def _screenshot(self, path: Path, ev: list[dict[str, Any]]) -> None:
        metrics = self.call("Page.getLayoutMetrics", ev)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = int(min(max(size["height"], 600), 16000))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            ev,
            width=1280,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = self.call("Page.captureScreenshot", ev, format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
