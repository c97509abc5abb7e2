"""Accuracy gates on the project's held-out test split (nlp/data/test.jsonl)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from eval_nlu import evaluate  # noqa: E402

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def figures() -> dict:
    if not (ROOT / "nlp" / "data" / "test.jsonl").is_file():
        pytest.skip("nlp/data/test.jsonl not present")
    return evaluate("test")


def test_intent_macro_f1(figures: dict) -> None:
    assert figures["intent_macro_f1"] >= 0.90, figures["intent_confusions"]


def test_willingness_macro_f1(figures: dict) -> None:
    assert figures["willingness_macro_f1"] >= 0.85, figures["willingness_confusions"]


def test_entity_f1(figures: dict) -> None:
    ent = figures["entity"]
    assert ent["f1"] >= 0.95, ent["errors"][:10]


def test_confidences_are_probabilities(figures: dict) -> None:
    assert 0.0 < figures["intent_accuracy"] <= 1.0
    assert figures["n"] > 100
