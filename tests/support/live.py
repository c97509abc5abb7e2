"""Shared plumbing for tests that drive a real server: uvicorn in a thread, headless Chromium.

Imported as ``from support.live import ...`` (``tests/`` is on ``sys.path`` through the rootdir
``conftest.py``). Selenium is imported lazily so that server-only tests do not need it.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from agent.bootstrap import Services

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: Module mark for browser tests: skip where Debian's Chromium and its driver are not installed.
requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
    reason="needs /usr/bin/chromium and /usr/bin/chromedriver "
           "(apt-get install -y chromium chromium-driver)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(services: Services, *, name: str = "uvicorn-live",
                   start_timeout: float = 30.0) -> Iterator[str]:
    """Serve ``create_app(services)`` on a free local port; yields the base URL.

    The server runs in a daemon thread and is asked to exit (and joined) on leaving the block.
    The caller keeps ownership of ``services`` (disposing its engine is up to it).
    """
    import uvicorn

    from agent.api.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(services), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def chromium_driver(width: int, height: int) -> Iterator[WebDriver]:
    """Headless Debian Chromium through chromedriver, with a throwaway profile directory."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hk-chromium-")
    try:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={profile}", "--lang=zh-CN"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            driver.set_window_size(width, height)
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
