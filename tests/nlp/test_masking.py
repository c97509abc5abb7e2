"""Masking of phones, IDs, cards and e-mails (spec: Sensitive data)."""

from __future__ import annotations

import time

import pytest

from nlp.masking import find_sensitive, mask_sensitive


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我电话13812345678", "我电话138****5678"),
        ("打138 1234 5678找我", "打138 **** 5678找我"),
        ("138-1234-5678", "138-****-5678"),
        ("+86 13812345678", "+86 138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("身份证110105199001011234", "身份证110105********1234"),
        ("身份证11010519900101123X", "身份证110105********123X"),
        ("id 11010519900101123x ok", "id 110105********123x ok"),
        ("卡号6222021234567890", "卡号6222 **** **** 7890"),
        ("卡号6222 0212 3456 1234", "卡号6222 **** **** 1234"),
        ("卡号6222021234567890123", "卡号6222 **** **** 0123"),
        ("邮箱zhang.san@qq.com", "邮箱z***@qq.com"),
        ("13812345678@163.com", "1***@163.com"),
        ("座机010-12345678", "座机010-****5678"),
        ("幺三八一二三四五六七八", "幺三八****五六七八"),
    ],
)
def test_masks(text: str, expected: str) -> None:
    assert mask_sensitive(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "还了3000元",
        "2026-12-01还",
        "1.5万",
        "每月500",
        "尾号1234",
        "12378",
        "分24期",
        "20261201",
        "1234567890",  # 10 digits: not a mobile
        "23812345678",  # does not start with 1
    ],
)
def test_leaves_amounts_dates_and_short_numbers(text: str) -> None:
    assert mask_sensitive(text) == text


def test_id_is_not_eaten_as_phone_or_card() -> None:
    spans = find_sensitive("身份证110105199001011234，手机13912345678，卡6222021234567890")
    assert [k for k, _, _ in spans] == ["id", "phone", "card"]


def test_idempotent() -> None:
    text = "电话13812345678 身份证11010519900101123X 卡6222 0212 3456 1234 a.b@x.cn"
    once = mask_sensitive(text)
    assert mask_sensitive(once) == once
    assert find_sensitive(once) == []


def test_no_digits_fast_path() -> None:
    assert mask_sensitive("你好，我想还款") == "你好，我想还款"
    assert find_sensitive("") == []


def test_fast_enough() -> None:
    text = "我明天先还三千五百块，电话13812345678"
    t0 = time.perf_counter()
    for _ in range(2000):
        mask_sensitive(text)
    assert (time.perf_counter() - t0) / 2000 * 1000 < 0.3
