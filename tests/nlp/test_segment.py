"""jieba segmentation with the domain dictionary."""

from __future__ import annotations

import logging
import threading

from nlp.segment import USER_DICT, get_tokenizer, tokenize


def test_domain_terms_stay_whole() -> None:
    words = tokenize("逾期会上征信吗，罚息能不能减免，我想转人工")
    for term in ("逾期", "罚息", "减免", "转人工"):
        assert term in words
    assert "上征信" in words or "征信" in words


def test_payment_terms() -> None:
    words = tokenize("我用支付宝还款，或者转到对公账户")
    assert "支付宝" in words
    assert "还款" in words
    assert "对公账户" in words


def test_whitespace_dropped_and_text_preserved() -> None:
    text = "我 明天 还三千"
    words = tokenize(text)
    assert all(w.strip() for w in words)
    assert "".join(words) == text.replace(" ", "")
    assert tokenize("") == []


def test_user_dict_is_well_formed() -> None:
    lines = [ln for ln in USER_DICT.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert len(lines) >= 50
    for ln in lines:
        parts = ln.split()
        assert len(parts) == 3 and parts[1].isdigit(), ln


def test_initialised_once_across_threads() -> None:
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(get_tokenizer())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(x) for x in seen}) == 1


def test_jieba_log_silenced() -> None:
    tokenize("你好")
    assert logging.getLogger("jieba").level >= logging.WARNING
