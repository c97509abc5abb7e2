"""The embeddable chat widget in real headless Chromium against a real uvicorn server.

The server runs in a background thread on a free port with a fresh SQLite database; the
browser opens ``/widget/demo.html?token=…`` exactly as a lender's page would embed the widget.
Set ``HUIKUAN_E2E_URL`` (and ``HUIKUAN_E2E_API_KEY``) to drive an already running server instead.
"""

from __future__ import annotations

import copy
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from support.live import chromium_driver, requires_chromium, running_server

pytestmark = [pytest.mark.e2e, requires_chromium]

selenium = pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

REPLY_TIMEOUT_S = 60.0
# Injected before any page script: records every WebSocket and the frames it sends, so a test
# can drop the connection and read what the widget sent, without test hooks in the widget.
SOCKET_SPY = """
(function () {
  var Native = window.WebSocket;
  window.__hkSockets = []; window.__hkSent = [];
  function Spy(url, protocols) {
    var ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    window.__hkSockets.push(ws);
    var send = ws.send.bind(ws);
    ws.send = function (data) { window.__hkSent.push(String(data)); return send(data); };
    return ws;
  }
  Spy.prototype = Native.prototype;
  Spy.CONNECTING = 0; Spy.OPEN = 1; Spy.CLOSING = 2; Spy.CLOSED = 3;
  window.WebSocket = Spy;
})();
"""


class LiveServer:
    """Base URL plus an authenticated HTTP client for the lender-side API."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = httpx.Client(base_url=self.base_url, timeout=30.0,
                                headers={"Authorization": f"Bearer {api_key}"})

    def push_borrower(self, contract_doc: dict[str, Any], number: int) -> tuple[str, str]:
        """Push the contract's example portfolio, renumbered for borrower ``number`` (1 = B001)."""
        doc = copy.deepcopy(contract_doc)
        borrower_id, loan_id = f"B{number:03d}", f"L{number:03d}"
        doc["borrowers"][0]["id"] = borrower_id
        doc["loans"][0].update(id=loan_id, borrower_id=borrower_id)
        doc["payments"][0].update(id=f"P{number:03d}", loan_id=loan_id)
        response = self.api.post("/api/v1/portfolio", json=doc)
        assert response.status_code == 200, response.text
        return borrower_id, loan_id

    def session(self, borrower_id: str, loan_id: str) -> dict[str, Any]:
        response = self.api.post("/api/v1/chat/sessions",
                                 json={"borrower_id": borrower_id, "loan_id": loan_id})
        assert response.status_code in (200, 201), response.text
        body = response.json()
        assert body["token"] and body["expires_at"]
        return body

    def demo_url(self, token: str) -> str:
        return f"{self.base_url}/widget/demo.html?token={quote(token, safe='')}"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    external = os.environ.get("HUIKUAN_E2E_URL")
    if external:
        server = LiveServer(external, os.environ.get("HUIKUAN_E2E_API_KEY", ""))
        yield server
        server.api.close()
        return
    from agent.bootstrap import build_services
    from agent.config.settings import Settings

    tmp = tmp_path_factory.mktemp("e2e")
    settings = Settings(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'e2e.db'}",
                        api_key="e2e-key")
    services = build_services(settings)
    try:  # load language models now, so the browser's first wait is not a model load
        services.warm_up(voice=False)
    except Exception as exc:  # noqa: BLE001 - the chat path reports it for real if it matters
        warnings.warn(f"warm-up failed: {exc}", stacklevel=1)
    with running_server(services, name="uvicorn-e2e") as base_url:
        live = LiveServer(base_url, "e2e-key")
        yield live
        live.api.close()
    services.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium_driver(1280, 900) as driver:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": SOCKET_SPY})
        yield driver


@pytest.fixture
def page(browser: WebDriver) -> WebDriver:
    browser.set_window_size(1280, 900)
    browser.get("about:blank")
    return browser


_BORROWER_NUMBERS = iter(range(2, 1000))


@pytest.fixture
def fresh_session(live_server: LiveServer,
                  contract_doc: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """A chat session for a borrower no other test has talked to."""

    def make() -> dict[str, Any]:
        borrower_id, loan_id = live_server.push_borrower(contract_doc, next(_BORROWER_NUMBERS))
        return live_server.session(borrower_id, loan_id)

    return make


def _wait(driver: WebDriver, condition: Callable[[WebDriver], Any],
          timeout: float = REPLY_TIMEOUT_S, what: str = "") -> Any:
    def check(d: WebDriver) -> Any:
        return condition(d)

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(check)
    except Exception as exc:
        errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".hk-error") if e.text]
        status = driver.find_elements(By.ID, "hk-status")
        state = status[0].get_attribute("data-state") if status else None
        said = _texts(driver, ".hk-msg")[-4:]
        raise AssertionError(f"timed out waiting for {what or condition}; widget state={state!r}, "
                             f"errors={errors!r}, last messages={said!r}") from exc


def _texts(driver: WebDriver, selector: str) -> list[str]:
    return [e.get_attribute("textContent") or "" for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def _open_widget(driver: WebDriver, server: LiveServer, token: str) -> None:
    driver.get(server.demo_url(token))
    launcher = _wait(driver, lambda d: d.find_element(By.ID, "hk-launcher"), 10, "launcher")
    launcher.click()
    assert driver.find_element(By.ID, "hk-panel").is_displayed()


def _state(driver: WebDriver) -> str | None:
    return driver.find_element(By.ID, "hk-status").get_attribute("data-state")


def test_borrower_chats_through_widget_and_transcript_is_stored(
    page: WebDriver, live_server: LiveServer, contract_doc: dict[str, Any]
) -> None:
    borrower_id, loan_id = live_server.push_borrower(contract_doc, 1)
    session = live_server.session(borrower_id, loan_id)
    _open_widget(page, live_server, session["token"])

    opening = _wait(page, lambda d: _texts(d, ".hk-msg.hk-agent"), what="agent's opening message")
    assert opening[0].strip()
    assert _state(page) == "open"

    box = page.find_element(By.ID, "hk-input")
    box.send_keys("我还欠多少钱")
    assert page.find_element(By.ID, "hk-count").text == "6/2000"
    box.send_keys(Keys.ENTER)
    assert _texts(page, ".hk-msg.hk-borrower") == ["我还欠多少钱"]
    assert box.get_attribute("value") == ""
    before = len(opening)
    replies = _wait(page, lambda d: [t for t in _texts(d, ".hk-msg.hk-agent")[before:] if "元" in t],
                    what="a reply containing 元")
    assert replies

    conversation_id = session.get("conversation_id") or page.find_element(
        By.ID, "hk-panel").get_attribute("data-conversation-id")
    assert conversation_id, "neither the session nor the widget named the conversation"
    response = live_server.api.get(f"/api/v1/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    conversation = response.json()
    turns = sorted(conversation["turns"], key=lambda t: t["seq"])
    assert {t["speaker"] for t in turns} <= {"agent", "borrower"}
    assert turns[0]["speaker"] == "agent", "the agent speaks first"
    borrower_turns = [t for t in turns if t["speaker"] == "borrower"]
    assert [t["text"] for t in borrower_turns] == ["我还欠多少钱"]
    later_agent = [t for t in turns if t["speaker"] == "agent" and t["seq"] > borrower_turns[0]["seq"]]
    assert later_agent and any("元" in t["text"] for t in later_agent)
    assert conversation.get("loan_id", loan_id) == loan_id


def test_bad_token_shows_error_then_open_with_token_recovers(
    page: WebDriver, live_server: LiveServer, fresh_session: Callable[[], dict[str, Any]]
) -> None:
    _open_widget(page, live_server, "not-a-real-token")
    error = _wait(page, lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, ".hk-error")
                                        if e.is_displayed() and e.text), None),
                  15, "an error in the widget")
    assert "凭证" in error.text
    assert _state(page) == "unauthorized"
    assert not page.find_element(By.ID, "hk-input").is_enabled()
    assert not page.find_element(By.ID, "hk-send").is_enabled()
    assert _texts(page, ".hk-msg.hk-agent") == []
    time.sleep(1.5)  # no reconnect storm after 4401
    assert page.execute_script("return window.__hkSockets.length") == 1

    # The host page hands over a fresh token through the JavaScript API.
    page.execute_script("window.HuikuanChat.open({token: arguments[0]})", fresh_session()["token"])
    _wait(page, lambda d: _texts(d, ".hk-msg.hk-agent"), what="opening message with new token")
    assert _state(page) == "open" and page.find_element(By.ID, "hk-input").is_enabled()
    assert not page.find_element(By.ID, "hk-error").is_displayed()


def test_reconnects_with_same_token_after_drop(
    page: WebDriver, live_server: LiveServer, fresh_session: Callable[[], dict[str, Any]]
) -> None:
    session = fresh_session()
    _open_widget(page, live_server, session["token"])
    _wait(page, lambda d: _texts(d, ".hk-msg.hk-agent"), what="opening message")
    page.execute_script("window.__hkSockets[0].close()")  # the network drops
    _wait(page, lambda d: d.execute_script(
        "return window.__hkSockets.length >= 2 && window.__hkSockets[1].readyState === 1"),
        15, "a second connection")
    _wait(page, lambda d: _state(d) == "open", 30, "the widget back online")
    starts = [json.loads(f) for f in page.execute_script("return window.__hkSent")]
    starts = [f for f in starts if f.get("type") == "start"]
    assert len(starts) == 2 and {f["token"] for f in starts} == {session["token"]}

    before = len(_texts(page, ".hk-msg.hk-agent"))
    box = page.find_element(By.ID, "hk-input")
    box.send_keys("怎么还款", Keys.ENTER)
    _wait(page, lambda d: len(_texts(d, ".hk-msg.hk-agent")) > before, what="a reply after resume")


def test_keyboard_length_limit_and_escaping(
    page: WebDriver, live_server: LiveServer, fresh_session: Callable[[], dict[str, Any]]
) -> None:
    session = fresh_session()
    _open_widget(page, live_server, session["token"])
    _wait(page, lambda d: _texts(d, ".hk-msg.hk-agent"), what="opening message")
    box = page.find_element(By.ID, "hk-input")
    assert page.switch_to.active_element == box, "the input has focus when the panel opens"

    box.send_keys("第一行", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "第二行")  # Shift+Enter: newline
    assert box.get_attribute("value") == "第一行\n第二行"
    assert _texts(page, ".hk-msg.hk-borrower") == []
    page.execute_script("arguments[0].value = ''", box)

    # Over 2,000 characters (set by script, past maxlength): refused client-side, nothing sent.
    page.execute_script("arguments[0].value = 'a'.repeat(2001);"
                        "arguments[0].dispatchEvent(new Event('input'))", box)
    assert page.find_element(By.ID, "hk-count").text == "2001/2000"
    page.find_element(By.ID, "hk-send").click()
    _wait(page, lambda d: any(e.is_displayed() and "2000" in e.text
                              for e in d.find_elements(By.CSS_SELECTOR, ".hk-error")), 5,
          "the length error")
    assert _texts(page, ".hk-msg.hk-borrower") == []
    assert box.get_attribute("maxlength") == "2000"

    hostile = '<img src=x onerror="window.__pwned=1"><b>粗体</b>'
    page.execute_script("arguments[0].value = arguments[1];"
                        "arguments[0].dispatchEvent(new Event('input'))", box, hostile)
    box.send_keys(Keys.ENTER)
    bubble = _wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, ".hk-msg.hk-borrower"), 5)[0]
    assert bubble.get_attribute("textContent") == hostile
    assert bubble.find_elements(By.CSS_SELECTOR, "*") == []
    assert page.execute_script("return window.__pwned === undefined")

    assert page.find_element(By.ID, "hk-log").get_attribute("aria-live") == "polite"
    box.send_keys(Keys.ESCAPE)
    assert not page.find_element(By.ID, "hk-panel").is_displayed()
    assert page.switch_to.active_element == page.find_element(By.ID, "hk-launcher")


def test_mobile_width_panel_fills_screen(
    page: WebDriver, live_server: LiveServer, fresh_session: Callable[[], dict[str, Any]]
) -> None:
    page.set_window_size(390, 844)
    session = fresh_session()
    _open_widget(page, live_server, session["token"])
    panel = page.find_element(By.ID, "hk-panel")
    width = page.execute_script("return document.documentElement.clientWidth")
    assert abs(panel.size["width"] - width) <= 1
    assert page.find_element(By.ID, "hk-send").is_displayed()
    _wait(page, lambda d: _texts(d, ".hk-msg.hk-agent"), what="opening message")
