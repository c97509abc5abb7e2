"""The supervisor console in real headless Chromium against a real uvicorn server.

A borrower chats through ``/ws/chat`` (the ``websockets`` sync client, as a browser would);
a supervisor then opens ``/console/``, pastes the API key, finds the conversation, reads the
masked transcript with its labels and submits a review, which the API then returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CONTRACT_DOC, FixedClock
from support.live import chromium_driver, requires_chromium, running_server

API_KEY = "console-e2e-key"

pytestmark = [pytest.mark.e2e, pytest.mark.nlu, pytest.mark.slow, requires_chromium]

pytest.importorskip("selenium")
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from websockets.sync.client import connect  # noqa: E402


class Server:
    def __init__(self, base: str, services: Any = None) -> None:
        self.base = base
        self.services = services
        self.api = httpx.Client(base_url=base, timeout=30.0,
                                headers={"Authorization": f"Bearer {API_KEY}"})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, nlu_pipeline: Any) -> Iterator[Server]:
    from agent.bootstrap import build_services
    from agent.config.settings import Settings

    data = tmp_path_factory.mktemp("console")
    services = build_services(
        Settings(data_dir=data, api_key=API_KEY, database_url=f"sqlite:///{data / 'db.sqlite'}"),
        nlu=nlu_pipeline, clock=FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC)))
    with running_server(services, name="uvicorn-console") as base_url:
        live = Server(base_url, services)
        assert live.api.post("/api/v1/portfolio", json=CONTRACT_DOC).status_code == 200
        yield live
        live.api.close()
    services.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium_driver(1400, 1000) as driver:
        yield driver


def chat_conversation(server: Server, messages: list[str]) -> str:
    """Talk to the agent over the real websocket; returns the conversation id."""
    response = server.api.post("/api/v1/chat/sessions",
                               json={"borrower_id": "B001", "loan_id": "L001"})
    assert response.status_code in (200, 201), response.text
    conversation_id = ""
    url = server.base.replace("http://", "ws://") + "/ws/chat"
    with connect(url, open_timeout=10, close_timeout=5) as ws:
        ws.send(json.dumps({"type": "start", "token": response.json()["token"]}))
        for text in [None, *messages]:
            if text is not None:
                ws.send(json.dumps({"type": "message", "text": text}))
            ws.send(json.dumps({"type": "ping"}))
            while True:
                frame = json.loads(ws.recv(timeout=60))
                assert frame["type"] != "error", frame
                if frame["type"] == "message":
                    conversation_id = frame["conversation_id"]
                if frame["type"] in ("pong", "end"):
                    break
    assert conversation_id
    return conversation_id


def wait(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str,
         timeout: float = 15) -> Any:
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(NoSuchElementException,
                                                 StaleElementReferenceException)).until(condition)
    except Exception as exc:
        logs = driver.execute_script(
            "return [document.getElementById('list-status').textContent,"
            " document.getElementById('key-error').textContent,"
            " document.getElementById('review-status').textContent]")
        raise AssertionError(f"timed out waiting for {what}; page status {logs!r}") from exc


def row_for(driver: WebDriver, conversation_id: str) -> Any:
    rows = driver.find_elements(By.CSS_SELECTOR, f'.conv-row[data-id="{conversation_id}"]')
    return rows[0] if rows else None


def test_supervisor_reads_masked_transcript_and_reviews(browser: WebDriver,
                                                        server: Server) -> None:
    conversation_id = chat_conversation(server, ["我现在一共欠你们多少钱，我手机号13812345678"])
    stored = server.api.get(f"/api/v1/conversations/{conversation_id}").json()
    borrower_turn = next(t for t in stored["turns"] if t["speaker"] == "borrower")
    assert borrower_turn["text"] == "我现在一共欠你们多少钱，我手机号138****5678"
    assert borrower_turn["intent"] == "ask_balance"

    browser.get(server.base + "/console/")
    key_input = wait(browser, lambda d: d.find_element(By.ID, "key-input"), "the key form")
    assert key_input.is_displayed() and not browser.find_element(By.ID, "app").is_displayed()

    # A wrong key is refused and asked for again.
    key_input.send_keys("not-the-key")
    browser.find_element(By.ID, "key-save").click()
    wait(browser, lambda d: d.find_element(By.ID, "key-error").is_displayed(), "key error")
    assert "无效" in browser.find_element(By.ID, "key-error").text
    assert browser.execute_script("return sessionStorage.length") == 0

    browser.find_element(By.ID, "key-input").send_keys(API_KEY)
    browser.find_element(By.ID, "key-save").click()
    row = wait(browser, lambda d: row_for(d, conversation_id), "the conversation in the list")
    assert browser.execute_script("return Object.values(sessionStorage)") == [API_KEY]
    cells = row.find_elements(By.TAG_NAME, "td")
    assert [cells[2].text, cells[3].text] == ["L001", "B001"]
    assert cells[1].text == "在线" and cells[7].text == "未审核"

    # The key survives a reload within the tab.
    browser.refresh()
    row = wait(browser, lambda d: row_for(d, conversation_id), "the list after reload")

    # Flag filter: the conversation carries no dispute flag, so it disappears and comes back.
    browser.find_element(By.CSS_SELECTOR, '.flag-filter[data-flag="dispute"]').click()
    wait(browser, lambda d: row_for(d, conversation_id) is None
         and "没有" in d.find_element(By.ID, "list-status").text, "dispute filter")
    browser.find_element(By.CSS_SELECTOR, '.flag-filter[data-flag=""]').click()
    wait(browser, lambda d: d.find_element(By.ID, "conv-list").get_attribute("data-flag") == ""
         and row_for(d, conversation_id), "all conversations again")
    search = browser.find_element(By.ID, "search")
    search.send_keys("B001\n")
    wait(browser, lambda d: d.find_element(By.ID, "conv-list").get_attribute("data-q") == "B001",
         "search by borrower")
    row = row_for(browser, conversation_id)

    row.click()
    wait(browser, lambda d: d.find_element(By.ID, "detail-body").get_attribute(
        "data-conversation-id") == conversation_id, "the conversation detail")
    turns = browser.find_elements(By.CSS_SELECTOR, "#transcript .turn")
    assert turns[0].get_attribute("data-speaker") == "agent"
    borrower = browser.find_element(By.CSS_SELECTOR, "#transcript .turn-borrower")
    assert borrower.find_element(By.CLASS_NAME, "turn-text").text == borrower_turn["text"]
    assert "13812345678" not in browser.find_element(By.ID, "transcript").text
    intent = borrower.find_element(By.CSS_SELECTOR, ".chip.intent").text
    assert "ask_balance" in intent and "询问欠款" in intent
    assert borrower.find_element(By.CSS_SELECTOR, ".chip.will").text
    assert borrower.find_element(By.TAG_NAME, "time").get_attribute("datetime") == \
        borrower_turn["at"]
    assert browser.find_element(By.ID, "d-recordings").text == "无录音"
    assert "尚未审核" in browser.find_element(By.ID, "d-reviews").text

    browser.find_element(By.ID, "verdict-issue").click()
    note = '语气可以更温和 <img src=x onerror="window.__pwned=1">'
    browser.find_element(By.ID, "review-note").send_keys(note)
    reviewer = browser.find_element(By.ID, "review-reviewer")
    reviewer.clear()
    reviewer.send_keys("王主管")
    browser.find_element(By.ID, "review-submit").click()
    wait(browser, lambda d: "已提交" in d.find_element(By.ID, "review-status").text,
         "review confirmation")
    shown = browser.find_element(By.CSS_SELECTOR, '#d-reviews .review[data-verdict="issue"]')
    assert shown.find_element(By.CLASS_NAME, "review-note").get_attribute("textContent") == note
    assert shown.find_elements(By.TAG_NAME, "img") == []
    assert browser.execute_script("return window.__pwned === undefined")
    wait(browser, lambda d: row_for(d, conversation_id).find_elements(By.TAG_NAME, "td")[7].text
         == "已审核", "the list marks it reviewed")

    reviews = server.api.get(f"/api/v1/conversations/{conversation_id}").json()["reviews"]
    assert [(r["verdict"], r["note"], r["reviewer"]) for r in reviews] == [
        ("issue", note, "王主管")]

    # Unreviewed-only view no longer lists it.
    browser.find_element(By.ID, "filter-unreviewed").click()
    wait(browser, lambda d: row_for(d, conversation_id) is None, "unreviewed filter")


def test_qa_queue_puts_the_worst_scored_conversation_first(browser: WebDriver,
                                                          server: Server) -> None:
    from sqlmodel import Session

    from agent.store.tables import Conversation

    clean = chat_conversation(server, ["拜拜"])
    worse = chat_conversation(server, ["我下周一还", "拜拜"])
    listed = server.api.get("/api/v1/conversations", params={"order": "qa"}).json()
    scores = {row["id"]: row["qa_score"] for row in listed}
    assert scores[clean] == 100 and scores[worse] == 100  # scored when they ended: clean
    # One conversation with a finding, as the scorecard would store it.
    with Session(server.services.engine) as db:
        conversation = db.get(Conversation, worse)
        conversation.qa_score = 65
        conversation.qa = {"violations_by_rule": {"threat": 1}, "score": 65}
        db.add(conversation)
        db.commit()

    browser.get(server.base + "/console/")
    wait(browser, lambda d: d.find_element(By.ID, "app").is_displayed()
         or d.find_element(By.ID, "key-input").is_displayed(), "the console")
    if not browser.find_element(By.ID, "app").is_displayed():
        browser.find_element(By.ID, "key-input").send_keys(API_KEY)
        browser.find_element(By.ID, "key-save").click()
    if browser.find_element(By.ID, "filter-unreviewed").is_selected():
        browser.find_element(By.ID, "filter-unreviewed").click()
    browser.find_element(By.ID, "filter-qa").click()
    wait(browser, lambda d: d.find_element(By.ID, "conv-list").get_attribute("data-qa") == "true"
         and row_for(d, clean) is not None, "the QA queue")
    rows = browser.find_elements(By.CSS_SELECTOR, ".conv-row")
    assert rows[0].get_attribute("data-id") == worse
    score = rows[0].find_element(By.CLASS_NAME, "qa-score")
    assert score.text == "65" and "threat" in score.get_attribute("title")
    assert row_for(browser, clean).find_element(By.CLASS_NAME, "qa-score").text == "100"


def test_a_recording_shows_its_ai_content_label(browser: WebDriver, server: Server) -> None:
    """The agent leg's implicit AI label (人工智能生成合成内容标识办法) is shown beside it."""
    from sqlmodel import Session

    from agent.store.tables import Conversation
    from voice.audio import WavRecorder, ai_content_label

    conversation_id = chat_conversation(server, ["拜拜"])
    data_dir = Path(server.services.settings.data_dir)
    legs = {}
    for leg, label in (("agent", ai_content_label("回款消费金融")), ("caller", None)):
        recorder = WavRecorder(data_dir / "recordings" / f"{conversation_id}-{leg}.wav",
                               label=label)
        recorder.write_pcm16(b"\x00\x00" * 8000)
        recorder.close()
        legs[leg] = f"recordings/{conversation_id}-{leg}.wav"
    with Session(server.services.engine) as db:
        conversation = db.get(Conversation, conversation_id)
        conversation.recordings = legs
        db.add(conversation)
        db.commit()

    browser.get(server.base + "/console/")
    wait(browser, lambda d: d.find_element(By.ID, "app").is_displayed()
         or d.find_element(By.ID, "key-input").is_displayed(), "the console")
    if not browser.find_element(By.ID, "app").is_displayed():
        browser.find_element(By.ID, "key-input").send_keys(API_KEY)
        browser.find_element(By.ID, "key-save").click()
    if browser.find_element(By.ID, "filter-unreviewed").is_selected():
        browser.find_element(By.ID, "filter-unreviewed").click()
    row = wait(browser, lambda d: row_for(d, conversation_id), "the conversation")
    row.click()
    wait(browser, lambda d: d.find_element(By.ID, "detail-body").get_attribute(
        "data-conversation-id") == conversation_id, "the conversation detail")
    for leg in ("agent", "caller"):
        browser.find_element(By.CSS_SELECTOR, f'.recording[data-leg="{leg}"] button').click()
    agent = browser.find_element(By.CSS_SELECTOR, '.recording[data-leg="agent"]')
    label = wait(browser, lambda d: agent.find_element(By.CLASS_NAME, "ai-label")
                 if agent.find_element(By.CLASS_NAME, "ai-label").is_displayed() else None,
                 "the AI-content label")
    assert "AI生成合成内容" in label.text and "回款消费金融" in label.text
    caller = browser.find_element(By.CSS_SELECTOR, '.recording[data-leg="caller"]')
    wait(browser, lambda d: caller.find_element(By.TAG_NAME, "audio").is_displayed(),
         "the caller leg loaded")
    assert not caller.find_element(By.CLASS_NAME, "ai-label").is_displayed()
