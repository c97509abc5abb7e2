"""NluPipeline behaviour on awkward input, offsets, masking, truncation and determinism."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from agent.core.labels import Intent, NluResult, Willingness
from nlp.pipeline import NluPipeline

pytestmark = pytest.mark.model

REF = datetime(2026, 11, 25, 10, 0, 0)


@pytest.fixture(scope="module")
def pipe() -> NluPipeline:
    return NluPipeline.load()


@pytest.mark.parametrize("text", ["", " ", "\n\t  ", "\x00\x07", "\u200b\u200b"])
def test_blank_input_is_other_none_with_full_confidence(pipe: NluPipeline, text: str) -> None:
    r = pipe.parse(text, REF)
    assert r.intent is Intent.OTHER
    assert r.willingness is Willingness.NONE
    assert r.intent_confidence == 1.0 and r.willingness_confidence == 1.0
    assert r.entities == ()
    assert not r.truncated


@pytest.mark.parametrize(
    "text",
    ["😀😀😀", "🙏", "hello, who is this?", "OK", "???", "1234", "我\x00明天\x1f还", "a" * 50],
)
def test_odd_input_does_not_crash(pipe: NluPipeline, text: str) -> None:
    r = pipe.parse(text, REF)
    assert isinstance(r, NluResult)
    assert 0.0 <= r.intent_confidence <= 1.0
    assert 0.0 <= r.willingness_confidence <= 1.0
    assert r.model == pipe.version and r.model


def test_control_characters_do_not_change_the_label(pipe: NluPipeline) -> None:
    clean = pipe.parse("我明天就还钱", REF)
    noisy = pipe.parse("我明天\x00就还\x1b钱\x7f", REF)
    assert noisy.intent == clean.intent
    assert noisy.willingness == clean.willingness


def test_long_text_is_truncated_and_flagged(pipe: NluPipeline) -> None:
    text = "我下个月一定还清。" * 400  # 3600 characters
    r = pipe.parse(text, REF)
    assert r.truncated
    assert all(e.end <= 2000 for e in r.entities)
    short = pipe.parse("我下个月一定还清。", REF)
    assert not short.truncated


def test_exactly_max_length_is_not_truncated(pipe: NluPipeline) -> None:
    assert not pipe.parse("好" * 2000, REF).truncated
    assert pipe.parse("好" * 2001, REF).truncated


def test_entity_offsets_index_the_original_text(pipe: NluPipeline) -> None:
    text = "\x00😀 喂，我明天用支付宝还三千块"
    r = pipe.parse(text, REF)
    assert r.entities, "expected date / channel / amount entities"
    for e in r.entities:
        assert text[e.start : e.end] == e.text
    types = {e.type for e in r.entities}
    assert {"date", "channel", "amount"} <= types
    assert r.first("date").value == "2026-11-26"
    assert r.first("amount").value == 3000


def test_sensitive_data_is_redacted(pipe: NluPipeline) -> None:
    r = pipe.parse("我的手机号是13812345678，你们别再打了", REF)
    assert "13812345678" not in r.redacted_text
    assert "5678" in r.redacted_text


def test_deterministic_and_batch_equals_single(pipe: NluPipeline) -> None:
    texts = ["你好", "我失业了，能不能分期", "这笔钱不是我借的", "转人工", "嗯嗯好的", "再说吧"]
    single = [pipe.parse(t, REF) for t in texts]
    again = [pipe.parse(t, REF) for t in texts]
    batch = pipe.parse_batch(texts, REF)
    for a, b, c in zip(single, again, batch, strict=True):
        assert a == b
        assert (a.intent, a.willingness) == (c.intent, c.willingness)
        assert a.intent_confidence == pytest.approx(c.intent_confidence, abs=1e-4)


def test_thread_pool_matches_sequential(pipe: NluPipeline) -> None:
    texts = ["我已经还了", "别再打电话了", "你打错了", "明天还你两千", "利息怎么算"] * 8
    expected = [pipe.parse(t, REF).intent for t in texts]
    with ThreadPoolExecutor(max_workers=4) as ex:
        got = list(ex.map(lambda t: pipe.parse(t, REF).intent, texts))
    assert got == expected


def test_default_reference_time_works(pipe: NluPipeline) -> None:
    r = pipe.parse("我明天还")
    assert r.first("date") is not None


def test_priority_example_from_spec(pipe: NluPipeline) -> None:
    r = pipe.parse("我失业了，能不能分期", REF)
    assert r.intent is Intent.HARDSHIP
    assert r.first("hardship_reason").value == "unemployment"


def test_missing_artefacts_error_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        NluPipeline.load(tmp_path)
