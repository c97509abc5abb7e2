"""Character n-gram + word TF-IDF features with a multinomial logistic-regression head.

Training uses scikit-learn on sparse matrices; the fitted weights are exported to npz/json
and inference is plain numpy, so no pickled estimator is ever loaded.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from nlp.textproc import normalize


def _default_tokenize(text: str) -> list[str]:
    try:
        from nlp.segment import tokenize
    except ImportError:  # the shared segmenter is optional for this model
        import jieba

        return jieba.lcut(text)
    return tokenize(text)


class NgramFeaturizer:
    """Sparse TF-IDF over char 1–3-grams (with edge markers) and jieba words."""

    def __init__(
        self,
        vocab: dict[str, int] | None = None,
        idf: np.ndarray | None = None,
        tokenize: Callable[[str], list[str]] | None = None,
        ngram_max: int = 3,
    ) -> None:
        self.vocab = vocab or {}
        self.idf = idf if idf is not None else np.zeros(0, dtype=np.float32)
        self.tokenize = tokenize or _default_tokenize
        self.ngram_max = ngram_max

    def terms(self, text: str) -> list[str]:
        """All raw terms of one text; edge markers let 不是… differ from …不是."""
        t = normalize(text)
        compact = t.replace(" ", "")
        padded = "^" + compact + "$"
        out: list[str] = []
        for n in range(1, self.ngram_max + 1):
            src = compact if n == 1 else padded
            out.extend(src[i : i + n] for i in range(len(src) - n + 1))
        out.extend("w:" + w for w in self.tokenize(t) if w.strip())
        return out

    def fit(self, texts: Sequence[str], min_df: int = 2) -> NgramFeaturizer:
        df: Counter[str] = Counter()
        for text in texts:
            df.update(set(self.terms(text)))
        kept = sorted(term for term, c in df.items() if c >= min_df)
        self.vocab = {term: i for i, term in enumerate(kept)}
        n = len(texts)
        self.idf = np.array(
            [math.log((1 + n) / (1 + df[term])) + 1.0 for term in kept], dtype=np.float32
        )
        return self

    def transform_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Indices and L2-normalised sublinear TF-IDF values of one text."""
        counts = Counter(self.vocab[t] for t in self.terms(text) if t in self.vocab)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        vals = (1.0 + np.log(tf)) * self.idf[idx]
        vals /= float(np.linalg.norm(vals)) or 1.0
        return idx, vals

    def transform(self, texts: Iterable[str]):  # -> scipy.sparse.csr_matrix
        from scipy import sparse

        rows, cols, data = [], [], []
        n = 0
        for i, text in enumerate(texts):
            idx, vals = self.transform_one(text)
            rows.extend([i] * len(idx))
            cols.extend(idx.tolist())
            data.extend(vals.tolist())
            n = i + 1
        return sparse.csr_matrix((data, (rows, cols)), shape=(n, len(self.vocab)), dtype=np.float32)


class NgramClassifier:
    """Two softmax heads (intent, willingness) over shared n-gram features."""

    def __init__(
        self,
        featurizer: NgramFeaturizer,
        heads: dict[str, tuple[np.ndarray, np.ndarray]],
        labels: dict[str, list[str]],
    ) -> None:
        self.featurizer = featurizer
        self.heads = heads  # name -> (W (V, C) float32, b (C,))
        self.labels = labels

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        targets: dict[str, Sequence[str]],
        labels: dict[str, list[str]],
        c_value: float = 10.0,
        min_df: int = 2,
        seed: int = 0,
    ) -> NgramClassifier:
        from sklearn.linear_model import LogisticRegression

        feat = NgramFeaturizer().fit(texts, min_df=min_df)
        x = feat.transform(texts)
        heads: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, y in targets.items():
            index = {lab: i for i, lab in enumerate(labels[name])}
            yi = np.array([index[v] for v in y])
            # balanced weights: the metric is macro-F1 and `none` dominates willingness
            clf = LogisticRegression(
                C=c_value, max_iter=3000, random_state=seed, class_weight="balanced"
            )
            clf.fit(x, yi)
            w = np.zeros((len(feat.vocab), len(labels[name])), dtype=np.float32)
            b = np.full(len(labels[name]), -1e4, dtype=np.float32)  # unseen classes never win
            if len(clf.classes_) == 2:  # sklearn keeps one row for binary problems
                w[:, clf.classes_[1]] = clf.coef_[0]
                b[clf.classes_[0]], b[clf.classes_[1]] = 0.0, clf.intercept_[0]
            else:
                for j, k in enumerate(clf.classes_):
                    w[:, k] = clf.coef_[j]
                    b[k] = clf.intercept_[j]
            heads[name] = (w, b)
        return cls(feat, heads, labels)

    def logits_one(self, text: str) -> dict[str, np.ndarray]:
        idx, vals = self.featurizer.transform_one(text)
        out = {}
        for name, (w, b) in self.heads.items():
            out[name] = (vals @ w[idx]).astype(np.float32) + b if len(idx) else b.copy()
        return out

    def logits(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        rows = [self.logits_one(t) for t in texts]
        return {name: np.stack([r[name] for r in rows]) for name in self.heads}

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        terms = sorted(self.featurizer.vocab, key=self.featurizer.vocab.__getitem__)
        meta = {"terms": terms, "labels": self.labels, "ngram_max": self.featurizer.ngram_max}
        (directory / "ngram_vocab.json").write_text(json.dumps(meta, ensure_ascii=False))
        arrays: dict[str, np.ndarray] = {"idf": self.featurizer.idf.astype(np.float32)}
        for name, (w, b) in self.heads.items():
            arrays[f"{name}_w"] = w.astype(np.float16)
            arrays[f"{name}_b"] = b.astype(np.float32)
        np.savez_compressed(directory / "ngram_weights.npz", **arrays)

    @classmethod
    def load(cls, directory: Path) -> NgramClassifier:
        meta = json.loads((directory / "ngram_vocab.json").read_text())
        arrays = np.load(directory / "ngram_weights.npz")
        vocab = {t: i for i, t in enumerate(meta["terms"])}
        feat = NgramFeaturizer(vocab, arrays["idf"], ngram_max=int(meta["ngram_max"]))
        heads = {
            name: (arrays[f"{name}_w"].astype(np.float32), arrays[f"{name}_b"])
            for name in meta["labels"]
        }
        return cls(feat, heads, meta["labels"])
