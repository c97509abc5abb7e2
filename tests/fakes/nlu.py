"""A scripted NLU: text → NluResult by a table, so command rules run without the model."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from agent.core.labels import Entity, Intent, NluResult, Willingness


class FakeNlu:
    """Returns the scripted reading for a text (``other`` at low confidence otherwise)."""

    def __init__(self, table: dict[str, tuple[Intent, float, tuple[Entity, ...]]] | None = None
                 ) -> None:
        self.table = dict(table or {})
        self.calls: list[str] = []

    def add(self, text: str, intent: Intent, confidence: float = 0.95,
            *entities: Entity) -> None:
        self.table[text] = (intent, confidence, tuple(entities))

    def parse(self, text: str, ref: datetime | None = None) -> NluResult:
        self.calls.append(text)
        intent, confidence, entities = self.table.get(text, (Intent.OTHER, 0.4, ()))
        return NluResult(intent=intent, intent_confidence=confidence,
                         willingness=Willingness.NONE, willingness_confidence=0.9,
                         entities=entities, redacted_text=text, model="fake")

    def parse_batch(self, texts: Sequence[str], ref: datetime | None = None) -> list[NluResult]:
        return [self.parse(t, ref) for t in texts]


def date_entity(text: str, iso: str) -> Entity:
    return Entity("date", text, 0, len(text), iso)


def amount_entity(text: str, value: float) -> Entity:
    return Entity("amount", text, 0, len(text), value)
