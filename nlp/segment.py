"""Word segmentation: jieba with the collections-domain user dictionary.

A private `jieba.Tokenizer` (not the module-global one) keeps our dictionary from leaking into
other users of jieba in the process; it is built lazily on first use, once, under a lock, so
import stays cheap and concurrent first calls do not load the dictionary twice.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import jieba

__all__ = ["USER_DICT", "get_tokenizer", "tokenize"]

USER_DICT = Path(__file__).resolve().parent / "data" / "userdict.txt"

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None


def get_tokenizer() -> jieba.Tokenizer:
    """The shared, initialised tokenizer (jieba's start-up chatter silenced)."""
    global _tokenizer
    tk = _tokenizer
    if tk is not None:
        return tk
    with _lock:
        if _tokenizer is None:
            jieba.setLogLevel(logging.WARNING)
            logging.getLogger("jieba").setLevel(logging.WARNING)
            new = jieba.Tokenizer()
            new.initialize()
            if USER_DICT.is_file():
                new.load_userdict(str(USER_DICT))
            _tokenizer = new
        return _tokenizer


def tokenize(text: str) -> list[str]:
    """Words of `text` in order, whitespace dropped (HMM on, for unseen names and slang)."""
    if not text:
        return []
    return [w for w in get_tokenizer().lcut(text) if w.strip()]
