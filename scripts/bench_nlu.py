"""Benchmark the NLU pipeline against a plain jieba + TF-IDF + logistic-regression peer.

    python scripts/bench_nlu.py [--n 300] [--url http://127.0.0.1:8000]

Reports in-process p50/p95 latency of one `parse`, batched throughput, optional HTTP latency
(POST /api/v1/nlu/parse with `Authorization: Bearer $HUIKUAN_API_KEY`), and the same figures
for the peer trained on the same training data, with accuracy/F1 on the test split and ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from nlp.evaluation import REF_TIME, accuracy, load_split, macro_f1  # noqa: E402
from nlp.pipeline import NluPipeline  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def time_each(fn, items: list[str]) -> list[float]:  # noqa: ANN001
    out = []
    for it in items:
        t0 = time.perf_counter()
        fn(it)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def baseline(train: list[dict]):  # noqa: ANN201
    """The peer: jieba words → TF-IDF → sklearn LogisticRegression (intent only)."""
    import jieba
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(tokenizer=jieba.lcut, token_pattern=None, lowercase=True)
    x = vec.fit_transform([r["text"] for r in train])
    clf = LogisticRegression(max_iter=2000, C=10.0).fit(x, [r["intent"] for r in train])
    return lambda texts: list(clf.predict(vec.transform(texts)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="utterances timed one at a time")
    ap.add_argument("--url", default=None, help="server base URL for the HTTP latency test")
    ap.add_argument("--model-dir", type=Path, default=None)
    args = ap.parse_args()

    test = load_split("test")
    texts = [r["text"] for r in test]
    sample = (texts * (args.n // max(1, len(texts)) + 1))[: args.n]

    t0 = time.perf_counter()
    pipe = NluPipeline.load(args.model_dir)
    load_s = time.perf_counter() - t0
    lat = time_each(lambda t: pipe.parse(t, REF_TIME), sample)
    stages = Counter(pipe.parse(t, REF_TIME).extra.get("stage") for t in sample)
    share = " ".join(f"{k}:{v / len(sample):.0%}" for k, v in sorted(stages.items()))
    t0 = time.perf_counter()
    results = pipe.parse_batch(texts, REF_TIME)
    thr = len(texts) / (time.perf_counter() - t0)
    gold = [r["intent"] for r in test]
    pred = [x.intent.value for x in results]
    ours = {"acc": accuracy(gold, pred), "f1": macro_f1(gold, pred)}
    cls_lat = time_each(lambda t: pipe.classifier.predict(t), sample)

    print(f"model {pipe.version} (load {load_s:.2f}s)")
    print(
        f"in-process parse: p50 {pct(lat, 50):.2f} ms  p95 {pct(lat, 95):.2f} ms  "
        f"max {max(lat):.1f} ms  (stages {share})"
    )
    print(f"classifier only : p50 {pct(cls_lat, 50):.2f} ms  p95 {pct(cls_lat, 95):.2f} ms")
    print(f"batched throughput: {thr:.0f} utterances/s")
    print(f"test intent acc {ours['acc']:.4f}  macro-F1 {ours['f1']:.4f}")

    if args.url:
        import httpx

        headers = {"Authorization": f"Bearer {os.environ.get('HUIKUAN_API_KEY', '')}"}
        url = args.url.rstrip("/") + "/api/v1/nlu/parse"
        with httpx.Client(timeout=10.0) as client:
            r = client.post(url, json={"text": "你好"}, headers=headers)
            if r.status_code != 200:
                print(f"HTTP {r.status_code} from {url}: {r.text[:200]}")
            else:
                http = time_each(
                    lambda t: client.post(url, json={"text": t}, headers=headers), sample[:200]
                )
                print(f"HTTP parse: p50 {pct(http, 50):.2f} ms  p95 {pct(http, 95):.2f} ms")

    t0 = time.perf_counter()
    peer = baseline(load_split("train"))
    peer_train_s = time.perf_counter() - t0
    peer_lat = time_each(lambda t: peer([t]), sample)
    t0 = time.perf_counter()
    peer_pred = peer(texts)
    peer_thr = len(texts) / (time.perf_counter() - t0)
    theirs = {"acc": accuracy(gold, peer_pred), "f1": macro_f1(gold, peer_pred)}
    print(
        f"\npeer jieba+TF-IDF+LR (trained in {peer_train_s:.1f}s): test intent acc "
        f"{theirs['acc']:.4f}  macro-F1 {theirs['f1']:.4f}"
    )
    print(
        f"peer latency p50 {pct(peer_lat, 50):.2f} ms  p95 {pct(peer_lat, 95):.2f} ms  "
        f"throughput {peer_thr:.0f} utt/s"
    )
    print("\nratios (ours / peer)")
    print(f"  intent accuracy  {ours['acc'] / max(theirs['acc'], 1e-9):.3f}")
    print(f"  intent macro-F1  {ours['f1'] / max(theirs['f1'], 1e-9):.3f}")
    print(f"  p50 latency      {pct(lat, 50) / max(pct(peer_lat, 50), 1e-9):.2f}")
    print(f"  p95 latency      {pct(lat, 95) / max(pct(peer_lat, 95), 1e-9):.2f}")
    print(f"  throughput       {thr / max(peer_thr, 1e-9):.2f}")
    print(f"  (median of all parse latencies {statistics.median(lat):.2f} ms)")


if __name__ == "__main__":
    main()
