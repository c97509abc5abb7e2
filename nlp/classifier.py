"""Intent + willingness classification: a calibrated three-stage cascade.

Stage 1 (always, ~0.3 ms): character n-gram / jieba-word TF-IDF logistic regression.
Stage 2 (when stage 1 is unsure, ~2 ms): + a compact character transformer, combined as a
weighted sum of log-probabilities.
Stage 3 (when stage 2 is still unsure, ~10 ms): + frozen multilingual-E5 embeddings with
linear heads. E5 saw far more language than our corpus, which helps on phrasing the corpus
never showed, but is slow, so it is consulted only below a confidence threshold.
Confidences are temperature-scaled on the dev split, separately for each stage.

All weights, thresholds and temperatures live in `manifest.json` next to the artefacts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nlp import e5_head
from nlp.e5_head import E5Head
from nlp.ngram import NgramClassifier
from nlp.transformer_model import TransformerClassifier

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models"
HEADS = ("intent", "willingness")


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(z))


@dataclass
class CascadeConfig:
    """How component log-probabilities are mixed; chosen on the dev split by train_nlu."""

    w_ngram: float = 0.5  # stage-1 weight of the n-gram model (transformer gets 1 - w_ngram)
    w_e5: float = 0.3  # stage-2 weight of E5 (stage 1 gets 1 - w_e5)
    threshold: float = 0.6  # stage-1 intent (or willingness) confidence below this → stage 2
    t_fast: dict[str, float] = field(default_factory=lambda: {h: 1.0 for h in HEADS})
    t_full: dict[str, float] = field(default_factory=lambda: {h: 1.0 for h in HEADS})
    use_e5: bool = True
    t_ngram: dict[str, float] = field(default_factory=lambda: {h: 1.0 for h in HEADS})
    ngram_threshold: float = 2.0  # stage-1 confidence at or above this on both heads → done


@dataclass(frozen=True)
class Prediction:
    intent: str
    intent_confidence: float
    willingness: str
    willingness_confidence: float
    stage: int  # 1: n-gram only; 2: + transformer; 3: + E5


def mix_fast(comp: dict[str, dict[str, np.ndarray]], cfg: CascadeConfig) -> dict[str, np.ndarray]:
    """Stage-1 combined (un-tempered) log-probabilities."""
    return {
        h: cfg.w_ngram * log_softmax(comp["ngram"][h])
        + (1 - cfg.w_ngram) * log_softmax(comp["transformer"][h])
        for h in HEADS
    }


def mix_full(
    fast: dict[str, np.ndarray], e5: dict[str, np.ndarray], cfg: CascadeConfig
) -> dict[str, np.ndarray]:
    return {h: (1 - cfg.w_e5) * fast[h] + cfg.w_e5 * log_softmax(e5[h]) for h in HEADS}


def _unsure(probs: dict[str, np.ndarray], threshold: float) -> np.ndarray:
    return (probs["intent"].max(-1) < threshold) | (probs["willingness"].max(-1) < threshold)


def cascade_probs(
    comp: dict[str, dict[str, np.ndarray]], cfg: CascadeConfig
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Vectorised cascade over precomputed component logits (used for tuning and eval).

    Returns the final probabilities and the stage (1, 2, 3) each row stopped at.
    """
    p_ngram = {h: softmax(comp["ngram"][h] / cfg.t_ngram[h]) for h in HEADS}
    fast = mix_fast(comp, cfg)
    p = {h: softmax(fast[h] / cfg.t_fast[h]) for h in HEADS}
    stage = np.full(len(fast["intent"]), 2)
    if cfg.use_e5 and "e5" in comp:
        to_e5 = _unsure(p, cfg.threshold)
        full = mix_full(fast, comp["e5"], cfg)
        for h in HEADS:
            p[h] = np.where(to_e5[:, None], softmax(full[h] / cfg.t_full[h]), p[h])
        stage[to_e5] = 3
    done = ~_unsure(p_ngram, cfg.ngram_threshold)
    for h in HEADS:
        p[h] = np.where(done[:, None], p_ngram[h], p[h])
    stage[done] = 1
    return p, stage


class NluClassifier:
    """Loads the artefacts once; `predict` is safe to call from several threads."""

    def __init__(
        self,
        ngram: NgramClassifier,
        transformer: TransformerClassifier,
        e5: E5Head | None,
        cfg: CascadeConfig,
        labels: dict[str, list[str]],
        version: str,
    ) -> None:
        self.ngram = ngram
        self.transformer = transformer
        self.e5 = e5 if (e5 is not None and cfg.use_e5 and e5_head.available()) else None
        self.cfg = cfg
        self.labels = labels
        self.version = version
        # torch modules are safe to run concurrently in eval mode, but with 2 cores parallel
        # forwards only oversubscribe; a lock keeps latency predictable under a thread pool.
        self._torch_lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: Path | None = None) -> NluClassifier:
        d = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
        manifest_path = d / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"NLU artefacts missing: {manifest_path} not found "
                "(run `python scripts/train_nlu.py` or restore nlp/models/ from git)"
            )
        manifest = json.loads(manifest_path.read_text())
        c = manifest["cascade"]
        cfg = CascadeConfig(
            w_ngram=c["w_ngram"],
            w_e5=c["w_e5"],
            threshold=c["threshold"],
            t_fast=c["t_fast"],
            t_full=c["t_full"],
            use_e5=c["use_e5"],
            t_ngram=c.get("t_ngram", {h: 1.0 for h in HEADS}),
            ngram_threshold=c.get("ngram_threshold", 2.0),
        )
        ngram = NgramClassifier.load(d / "ngram")
        transformer = TransformerClassifier.load(d / "transformer")
        e5 = E5Head.load(d / "e5") if (d / "e5" / "e5_head.npz").is_file() else None
        return cls(ngram, transformer, e5, cfg, manifest["labels"], manifest["version"])

    def component_logits(
        self, texts: Sequence[str], with_e5: bool = True
    ) -> dict[str, dict[str, np.ndarray]]:
        out = {"ngram": self.ngram.logits(texts)}
        with self._torch_lock:
            out["transformer"] = self.transformer.logits(texts)
        if with_e5 and self.e5 is not None:
            out["e5"] = self.e5.logits(texts)
        return out

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        cfg = self.cfg
        ngram = self.ngram.logits(texts)
        probs = {h: softmax(ngram[h] / cfg.t_ngram[h]) for h in HEADS}
        stage = np.ones(len(texts), dtype=int)
        idx2 = np.flatnonzero(_unsure(probs, cfg.ngram_threshold))
        if len(idx2):
            sub_texts = [texts[i] for i in idx2]
            with self._torch_lock:
                trans = self.transformer.logits(sub_texts)
            comp = {"ngram": {h: ngram[h][idx2] for h in HEADS}, "transformer": trans}
            fast = mix_fast(comp, cfg)
            p2 = {h: softmax(fast[h] / cfg.t_fast[h]) for h in HEADS}
            stage[idx2] = 2
            if self.e5 is not None:
                rel = np.flatnonzero(_unsure(p2, cfg.threshold))
                if len(rel):
                    e5 = self.e5.logits([sub_texts[i] for i in rel])
                    full = mix_full({h: fast[h][rel] for h in HEADS}, e5, cfg)
                    for h in HEADS:
                        p2[h][rel] = softmax(full[h] / cfg.t_full[h])
                    stage[idx2[rel]] = 3
            for h in HEADS:
                probs[h][idx2] = p2[h]
        preds = []
        for i in range(len(texts)):
            ii, wi = int(probs["intent"][i].argmax()), int(probs["willingness"][i].argmax())
            preds.append(
                Prediction(
                    self.labels["intent"][ii],
                    float(probs["intent"][i, ii]),
                    self.labels["willingness"][wi],
                    float(probs["willingness"][i, wi]),
                    int(stage[i]),
                )
            )
        return preds

    def predict(self, text: str) -> Prediction:
        return self.predict_batch([text])[0]
