"""NluPipeline: one borrower utterance → `NluResult` (intent, willingness, entities, masking).

Load once per process (`NluPipeline.load()`), then call `parse` from any thread.

Thread safety: the n-gram model is read-only numpy; the transformer forward runs under a
lock (with 2 cores, parallel forwards only oversubscribe) with torch limited to one intra-op
thread, set process-wide at load (`torch_threads=None` leaves torch's setting alone); the
E5 engine is serialised by its own lock. No per-call state is shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.core.labels import Entity, Intent, NluResult, Willingness
from nlp.classifier import DEFAULT_MODEL_DIR, NluClassifier, Prediction
from nlp.textproc import MAX_CHARS, is_blank, strip_control

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")  # borrowers' "明天" when the caller gives no reference time


class NluPipeline:
    """Classifier cascade + entity extraction + sensitive-data masking."""

    def __init__(self, classifier: NluClassifier) -> None:
        from nlp.entities import extract_entities
        from nlp.masking import mask_sensitive

        self.classifier = classifier
        self._extract = extract_entities
        self._mask = mask_sensitive
        self.version = classifier.version

    @classmethod
    def load(cls, model_dir: Path | None = None, torch_threads: int | None = 1) -> NluPipeline:
        """Load artefacts from `model_dir` (default nlp/models/) and warm every component.

        Raises FileNotFoundError naming the path when the artefacts are missing.
        """
        if torch_threads is not None:
            import torch

            torch.set_num_threads(torch_threads)
        pipe = cls(NluClassifier.load(Path(model_dir) if model_dir else DEFAULT_MODEL_DIR))
        pipe.parse("你好，我下周三还三千")  # warm-up: jieba dictionary, torch kernels, E5 engine
        pipe.classifier.predict_batch(["嗯"] * 2)
        return pipe

    @staticmethod
    def _prepare(text: str) -> tuple[str, bool]:
        """Text the classifier sees (first MAX_CHARS, control characters removed)."""
        truncated = len(text) > MAX_CHARS
        return strip_control(text[:MAX_CHARS]), truncated

    def _result(
        self, text: str, ref: datetime | None, pred: Prediction | None, truncated: bool
    ) -> NluResult:
        head = text[:MAX_CHARS]
        entities: tuple[Entity, ...] = ()
        if not is_blank(head):
            # offsets refer to the original text; only the classified prefix is searched
            entities = tuple(self._extract(head, ref or datetime.now(DEFAULT_TZ)))
        redacted = self._mask(text) if text else ""
        if pred is None:  # blank input: nothing to understand
            return NluResult(
                intent=Intent.OTHER,
                intent_confidence=1.0,
                willingness=Willingness.NONE,
                willingness_confidence=1.0,
                entities=entities,
                redacted_text=redacted,
                truncated=truncated,
                model=self.version,
                extra={"stage": 0},
            )
        return NluResult(
            intent=Intent(pred.intent),
            intent_confidence=pred.intent_confidence,
            willingness=Willingness(pred.willingness),
            willingness_confidence=pred.willingness_confidence,
            entities=entities,
            redacted_text=redacted,
            truncated=truncated,
            model=self.version,
            extra={"stage": pred.stage},
        )

    def parse(self, text: str, ref: datetime | None = None) -> NluResult:
        return self.parse_batch([text], ref)[0]

    def parse_batch(self, texts: Sequence[str], ref: datetime | None = None) -> list[NluResult]:
        """Parse several utterances at once (one batched forward pass for the classifiers)."""
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        prepared = [self._prepare(t) for t in texts]
        todo = [i for i, (clean, _) in enumerate(prepared) if clean.strip()]
        preds = self.classifier.predict_batch([prepared[i][0] for i in todo])
        by_index: dict[int, Prediction] = dict(zip(todo, preds, strict=True))
        return [self._result(t, ref, by_index.get(i), prepared[i][1]) for i, t in enumerate(texts)]
