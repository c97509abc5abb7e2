"""Validate the NLU corpus files against the label contract and nlp/data/ANNOTATION.md.

    python scripts/check_corpus.py [FILE_OR_DIR ...]      (default: nlp/data/*.jsonl)

Checks every line: valid JSON object, `text`, intent / willingness ids from the spec, and for
each entity its keys, type, value (number / ISO date / channel id / reason id), that
`text[start:end] == entity text`, sorted non-overlapping spans; then the automatable span
conventions (no time-of-day words in dates, no 钱 in amounts, no locatives in channels,
no 出/做 light verbs in hardship spans, passive 被 kept) and completeness for unambiguous words
(every 今天/明天/… is a date with the right value, every 支付宝/微信 a channel, every 车祸 a
reason). Exits 1 and lists the problems when any are found.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.core.labels import HARDSHIP_REASONS, PAYMENT_CHANNELS  # noqa: E402
from nlp.evaluation import DATA_DIR, LABELS, REF_TIME  # noqa: E402

ENTITY_KEYS = {"type", "text", "start", "end", "value"}
TODAY = REF_TIME.date()
# unambiguous one-day words and their offset from the reference day (longest first)
REL_DAY = {
    "大前天": -3,
    "大后天": 3,
    "前天": -2,
    "后天": 2,
    "昨天": -1,
    "昨晚": -1,
    "今天": 0,
    "今晚": 0,
    "明天": 1,
    "明早": 1,
    "明晚": 1,
}
REL_DAY_RE = re.compile("|".join(sorted(REL_DAY, key=len, reverse=True)))
# 以前天天 / 然后天天 / 之前天: 前天/后天 inside other words
REL_DAY_BLOCK = re.compile(r"(?:[以之然先最往落]$)")
DAY_PART_END = re.compile(r"(?:上午|下午|中午|早上|晚上|傍晚|凌晨)$")
MUST_TAG = {"支付宝": "channel", "微信": "channel", "车祸": "hardship_reason"}


def _check_value(ent: dict) -> str | None:
    t, v = ent["type"], ent["value"]
    if t == "amount":
        ok = isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        return None if ok else f"amount value {v!r} is not a positive number"
    if t == "date":
        try:
            date.fromisoformat(v)
        except (TypeError, ValueError):
            return f"date value {v!r} is not YYYY-MM-DD"
        return None
    if t == "channel":
        return None if v in PAYMENT_CHANNELS else f"channel value {v!r} unknown"
    if t == "hardship_reason":
        return None if v in HARDSHIP_REASONS else f"hardship_reason value {v!r} unknown"
    return f"unknown entity type {t!r}"


def _convention(text: str, ent: dict) -> str | None:
    t, et, st = ent["type"], ent["text"], ent["start"]
    if t == "date" and DAY_PART_END.search(et):
        return f"date span {et!r} keeps a time-of-day word"
    if t == "amount" and et.endswith("钱"):
        return f"amount span {et!r} keeps 钱"
    if t == "channel" and re.search(r"(?:里|里面|上|上面)$", et):
        return f"channel span {et!r} keeps a locative"
    if t == "hardship_reason":
        if re.match(r"出了?(?:车祸|事故)|做(?:完|了)?手术", et):
            return f"hardship span {et!r} keeps a light verb (出/做)"
        if et in ("裁员", "辞退", "开除", "裁") and text[st - 1 : st] == "被":
            return f"hardship span {et!r} drops the passive 被"
    return None


def _coverage(text: str, ents: list[dict]) -> list[str]:
    probs = []

    def covered(a: int, b: int, typ: str) -> list[dict]:
        return [e for e in ents if e["type"] == typ and e["start"] <= a and b <= e["end"]]

    for m in REL_DAY_RE.finditer(text):
        if m.group() in ("前天", "后天") and REL_DAY_BLOCK.search(text[: m.start()]):
            continue
        if m.group() in ("前天", "后天") and text[m.end() : m.end() + 1] == "天":
            continue
        hits = covered(m.start(), m.end(), "date")
        if not hits:
            probs.append(f"one-day word {m.group()!r} at {m.start()} has no date entity")
        elif len(hits[0]["text"]) == len(m.group()):
            want = (TODAY + timedelta(days=REL_DAY[m.group()])).isoformat()
            if hits[0]["value"] != want:
                probs.append(f"{m.group()!r} resolves to {want}, not {hits[0]['value']}")
    for word, typ in MUST_TAG.items():
        for m in re.finditer(word, text):
            if not covered(m.start(), m.end(), typ):
                probs.append(f"{word!r} at {m.start()} has no {typ} entity")
    return probs


def check_line(line: str) -> list[str]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return [f"invalid JSON: {exc}"]
    if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"]:
        return ["not an object with a non-empty `text`"]
    probs = []
    for key in ("intent", "willingness"):
        if row.get(key) not in LABELS[key]:
            probs.append(f"{key} {row.get(key)!r} is not a spec label")
    ents = row.get("entities")
    if not isinstance(ents, list):
        return probs + ["`entities` is not a list"]
    text, prev_end = row["text"], -1
    for ent in ents:
        if not isinstance(ent, dict) or set(ent) != ENTITY_KEYS:
            probs.append(f"entity {ent!r} must have exactly the keys {sorted(ENTITY_KEYS)}")
            continue
        st, en = ent["start"], ent["end"]
        if not (isinstance(st, int) and isinstance(en, int) and 0 <= st < en <= len(text)):
            probs.append(f"entity {ent['text']!r} has bad offsets {st!r}..{en!r}")
            continue
        if text[st:en] != ent["text"]:
            probs.append(f"text[{st}:{en}] is {text[st:en]!r}, not {ent['text']!r}")
        if st < prev_end:
            probs.append(f"entity {ent['text']!r} overlaps or is out of order")
        prev_end = en
        for p in (_check_value(ent), _convention(text, ent)):
            if p:
                probs.append(p)
    if not probs:
        probs += _coverage(text, ents)
    return probs


def check_file(path: Path) -> list[str]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        out += [f"{path.name}:{n}: {p}" for p in check_line(line)]
    return out


def corpus_files(args: list[str]) -> list[Path]:
    if not args:
        return sorted(DATA_DIR.glob("*.jsonl"))
    files: list[Path] = []
    for a in args:
        p = Path(a)
        files += sorted(p.glob("*.jsonl")) if p.is_dir() else [p]
    return files


def main(argv: list[str] | None = None) -> int:
    files = corpus_files(sys.argv[1:] if argv is None else argv)
    problems = [p for f in files for p in check_file(f)]
    for p in problems:
        print(p)
    print(f"checked {len(files)} file(s): {len(problems)} problem(s)")
    return 1 if problems or not files else 0


if __name__ == "__main__":
    sys.exit(main())
