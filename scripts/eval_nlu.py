"""Score the shipped NLU pipeline on a held-out split (test by default).

    python scripts/eval_nlu.py [--split dev] [--model-dir nlp/models] [--errors 20]

Prints intent accuracy / macro-F1, willingness macro-F1, entity P/R/F1 (type + start + end +
value; gold offsets found by locating each entity text in the utterance), the most frequent
confusions and per-intent F1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.evaluation import (  # noqa: E402
    LABELS,
    REF_TIME,
    accuracy,
    entity_scores,
    f1_per_class,
    load_split,
    macro_f1,
    top_confusions,
)
from nlp.pipeline import NluPipeline  # noqa: E402


def evaluate(split: str, model_dir: Path | None = None) -> dict:
    """Run the pipeline over one split and return every figure (used by the tests too)."""
    rows = load_split(split)
    if not rows:
        raise SystemExit(f"split {split!r} is empty or missing in nlp/data/")
    pipe = NluPipeline.load(model_dir)
    t0 = time.perf_counter()
    results = pipe.parse_batch([r["text"] for r in rows], REF_TIME)
    elapsed = time.perf_counter() - t0
    gi, pi = [r["intent"] for r in rows], [x.intent.value for x in results]
    gw, pw = [r["willingness"] for r in rows], [x.willingness.value for x in results]
    ents = entity_scores(rows, [x.entities for x in results])
    return {
        "split": split,
        "n": len(rows),
        "model": pipe.version,
        "intent_accuracy": accuracy(gi, pi),
        "intent_macro_f1": macro_f1(gi, pi),
        "willingness_accuracy": accuracy(gw, pw),
        "willingness_macro_f1": macro_f1(gw, pw),
        "entity": ents,
        "per_intent_f1": f1_per_class(gi, pi, LABELS["intent"]),
        "per_willingness_f1": f1_per_class(gw, pw, LABELS["willingness"]),
        "intent_confusions": top_confusions(gi, pi, 15),
        "willingness_confusions": top_confusions(gw, pw, 8),
        "stages": dict(Counter(int(x.extra.get("stage", 0)) for x in results)),
        "seconds": elapsed,
        "rows": rows,
        "predictions": list(zip(pi, pw, strict=True)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test", choices=["test", "dev", "train"])
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--errors", type=int, default=15, help="misclassified examples to list")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = ap.parse_args()
    r = evaluate(args.split, args.model_dir)
    e = r["entity"]
    if args.json:
        slim = {k: v for k, v in r.items() if k not in ("rows", "predictions")}
        slim["entity"] = {k: v for k, v in e.items() if k != "errors"}
        print(json.dumps(slim, ensure_ascii=False, indent=1))
        return
    print(f"split {r['split']}: {r['n']} utterances, model {r['model']}")
    print(f"intent       accuracy {r['intent_accuracy']:.4f}  macro-F1 {r['intent_macro_f1']:.4f}")
    print(
        f"willingness  accuracy {r['willingness_accuracy']:.4f}  "
        f"macro-F1 {r['willingness_macro_f1']:.4f}"
    )
    print(
        f"entities     P {e['precision']:.4f}  R {e['recall']:.4f}  F1 {e['f1']:.4f}  "
        f"(gold {e['n_gold']})"
    )
    stages = " ".join(f"{k}:{v / r['n']:.0%}" for k, v in sorted(r["stages"].items()))
    print(
        f"cascade stages (1 n-gram, 2 +transformer, 3 +E5) {stages}; "
        f"{r['n'] / r['seconds']:.0f} utt/s batched"
    )
    print("\ntop intent confusions (gold → predicted: count)")
    for g, p, n in r["intent_confusions"]:
        print(f"  {g:22s} → {p:22s} {n}")
    print("top willingness confusions")
    for g, p, n in r["willingness_confusions"]:
        print(f"  {g:8s} → {p:8s} {n}")
    support = Counter(row["intent"] for row in r["rows"])
    print("\nper-intent F1 (support)")
    for lab, f in sorted(r["per_intent_f1"].items(), key=lambda kv: kv[1]):
        print(f"  {lab:22s} {f:.3f} ({support.get(lab, 0)})")
    if args.errors:
        print(f"\nfirst {args.errors} misclassified")
        shown = 0
        for row, (pi, pw) in zip(r["rows"], r["predictions"], strict=True):
            if row["intent"] != pi or row["willingness"] != pw:
                print(
                    f"  {row['text']!r}: gold {row['intent']}/{row['willingness']} pred {pi}/{pw}"
                )
                shown += 1
                if shown >= args.errors:
                    break
        if e["errors"]:
            print(f"\nentity mismatches ({len(e['errors'])} utterances), first {args.errors}")
            for err in e["errors"][: args.errors]:
                print(f"  {err['text']!r}\n    gold {err['gold']}\n    pred {err['pred']}")


if __name__ == "__main__":
    main()
