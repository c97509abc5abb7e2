"""Corpus loading and the metrics shared by training, the eval script and the tests."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from agent.core.labels import Intent, Willingness

DATA_DIR = Path(__file__).resolve().parent / "data"
REF_TIME = datetime(2026, 11, 25, 10, 0, 0)  # the corpus resolves dates against 2026-11-25
LABELS: dict[str, list[str]] = {
    "intent": [i.value for i in Intent],
    "willingness": [w.value for w in Willingness],
}


def read_jsonl(path: Path) -> list[dict]:
    """Valid rows of one corpus file; malformed or mislabelled lines are skipped with a note."""
    rows, bad = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("text"), str)
            or row.get("intent") not in LABELS["intent"]
            or row.get("willingness") not in LABELS["willingness"]
        ):
            bad += 1
            continue
        row.setdefault("entities", [])
        rows.append(row)
    if bad:
        print(f"note: skipped {bad} malformed line(s) in {path.name}", file=sys.stderr)
    return rows


def load_split(name: str, data_dir: Path = DATA_DIR) -> list[dict]:
    """`train` (train_a*/train_b*), `dev` or `test`."""
    if name == "train":
        files = sorted(data_dir.glob("train_a*.jsonl")) + sorted(data_dir.glob("train_b*.jsonl"))
    else:
        files = [data_dir / f"{name}.jsonl"]
    rows: list[dict] = []
    for f in files:
        if f.is_file():
            rows.extend(read_jsonl(f))
    return rows


def f1_per_class(
    gold: Sequence[str], pred: Sequence[str], labels: Iterable[str]
) -> dict[str, float]:
    out = {}
    for lab in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == lab and p == lab)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != lab and p == lab)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == lab and p != lab)
        if tp + fp + fn == 0:
            continue  # class absent from both gold and predictions: not scored
        out[lab] = 2 * tp / (2 * tp + fp + fn)
    return out


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Macro-F1 over the classes present in the gold labels (sklearn's default minus absent)."""
    per = f1_per_class(gold, pred, sorted(set(gold)))
    return float(np.mean(list(per.values()))) if per else 0.0


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / max(1, len(gold))


def top_confusions(
    gold: Sequence[str], pred: Sequence[str], k: int = 10
) -> list[tuple[str, str, int]]:
    c = Counter((g, p) for g, p in zip(gold, pred, strict=True) if g != p)
    return [(g, p, n) for (g, p), n in c.most_common(k)]


def gold_entity_spans(row: dict) -> list[tuple[str, int, int, object]]:
    """Gold entities with their annotated offsets.

    An entity's own `start`/`end` are used when present and consistent with its text; otherwise
    the n-th mention of a text is placed at that text's n-th (non-overlapping) occurrence.
    """
    text, spans, seen = row["text"], [], {}
    for ent in row.get("entities", []):
        etext = ent.get("text", "")
        nth = seen.get(etext, 0)
        seen[etext] = nth + 1
        st, en = ent.get("start"), ent.get("end")
        if (
            isinstance(st, int)
            and isinstance(en, int)
            and 0 <= st < en <= len(text)
            and (not etext or text[st:en] == etext)
        ):
            spans.append((ent["type"], st, en, ent.get("value")))
            continue
        if not etext:
            continue
        start, pos = -1, 0
        for _ in range(nth + 1):
            start = text.find(etext, pos)
            if start < 0:
                break
            pos = start + len(etext)
        if start < 0:
            start = text.find(etext)  # fewer occurrences than mentions: fall back to the first
        if start < 0:
            continue
        spans.append((ent["type"], start, start + len(etext), ent.get("value")))
    return spans


def _same_value(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) < 1e-6
    return str(a) == str(b)


def entity_scores(rows: Sequence[dict], predicted: Sequence[Sequence]) -> dict:
    """Micro P/R/F1 matching type + start + end + value; also returns the mismatching rows."""
    tp = n_pred = n_gold = 0
    errors = []
    for row, preds in zip(rows, predicted, strict=True):
        gold = gold_entity_spans(row)
        pred = [(e.type, e.start, e.end, e.value) for e in preds]
        n_gold += len(gold)
        n_pred += len(pred)
        unmatched = list(gold)
        hit = 0
        for p in pred:
            for g in unmatched:
                if p[0] == g[0] and p[1] == g[1] and p[2] == g[2] and _same_value(p[3], g[3]):
                    unmatched.remove(g)
                    hit += 1
                    break
        tp += hit
        if hit != len(gold) or hit != len(pred):
            errors.append({"text": row["text"], "gold": gold, "pred": pred})
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / n_gold if n_gold else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "n_gold": n_gold, "errors": errors}
