"""The corpus files pass scripts/check_corpus.py (labels, offsets, span conventions)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_corpus", ROOT / "scripts/check_corpus.py")
assert _spec and _spec.loader
check_corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_corpus)


def _line(text: str, *ents: tuple) -> str:
    keys = ("type", "text", "start", "end", "value")
    return json.dumps(
        {
            "text": text,
            "intent": "promise_to_pay",
            "willingness": "high",
            "entities": [dict(zip(keys, e, strict=True)) for e in ents],
        },
        ensure_ascii=False,
    )


def test_every_corpus_file_is_clean(capsys) -> None:
    assert check_corpus.main([]) == 0, capsys.readouterr().out


def test_checker_accepts_a_good_line() -> None:
    line = _line(
        "明天下午用支付宝还两千块钱",
        ("date", "明天", 0, 2, "2026-11-26"),
        ("channel", "支付宝", 5, 8, "alipay"),
        ("amount", "两千块", 9, 12, 2000),
    )
    assert check_corpus.check_line(line) == []


def test_checker_flags_convention_breaks() -> None:
    assert check_corpus.check_line(_line("明天下午还", ("date", "明天下午", 0, 4, "2026-11-26")))
    assert check_corpus.check_line(_line("卡里扣吧", ("channel", "卡里", 0, 2, "bank_card")))
    assert check_corpus.check_line(_line("两千块钱", ("amount", "两千块钱", 0, 4, 2000)))
    assert check_corpus.check_line(
        _line("出车祸了", ("hardship_reason", "出车祸", 0, 3, "accident"))
    )
    assert check_corpus.check_line(
        _line("被裁员了", ("hardship_reason", "裁员", 1, 3, "unemployment"))
    )
    assert check_corpus.check_line(_line("今天天气不错"))  # untagged one-day word
    assert check_corpus.check_line(_line("明天还", ("date", "明天", 0, 2, "2026-11-27")))  # value
    assert check_corpus.check_line(_line("明天还", ("date", "明天", 1, 3, "2026-11-26")))  # offsets
    assert check_corpus.check_line('{"text": "x", "intent": "nope", "willingness": "high"}')
    assert check_corpus.check_line("{not json")
