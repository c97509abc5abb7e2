"""The compliance corpus is well-formed and its held-out writer never leaks into training."""

from __future__ import annotations

import json

from nlp.compliance import DATA_DIR, RULES, load_corpus

ADDRESSEES = {"borrower", "third_party", "unknown"}


def test_every_row_is_valid_and_labelled_with_catalogue_rule_ids() -> None:
    files = sorted(DATA_DIR.glob("*.jsonl"))
    assert files
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            row = json.loads(line)
            where = f"{path.name}:{number}"
            assert str(row["text"]).strip(), where
            assert set(row["rules"]) <= set(RULES), where
            assert row.get("addressee", "borrower") in ADDRESSEES, where
    assert load_corpus(files)  # the loader accepts what the checker accepts


def test_held_out_lines_are_not_in_training() -> None:
    held = {e.text for e in load_corpus([DATA_DIR / "writer_d.jsonl"])} \
        if (DATA_DIR / "writer_d.jsonl").exists() else set()
    train = {e.text for path in DATA_DIR.glob("*.jsonl") if path.stem != "writer_d"
             for e in load_corpus([path])}
    assert not held & train
