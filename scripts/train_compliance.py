"""Train the learned compliance classifier and measure the gate on a held-out writer.

    python scripts/train_compliance.py                    # train on all writers but the held-out
    python scripts/train_compliance.py --eval-only        # measure the packaged model

Training: every ``nlp/data/compliance/*.jsonl`` except the held-out files, plus every template
variant the strategies can say (lawful by construction: the product's own lines). The report
(``nlp/models/compliance/report.json`` and stdout) compares, on the held-out lines, the keyword
baseline, the rules alone, the learned model alone and the gate as shipped (rules + model),
per rule: violations caught, and lawful lines over-blocked; then the latency per utterance.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.policy.content import UtteranceContext, check_utterance  # noqa: E402
from agent.policy.profile import load_profile  # noqa: E402
from agent.strategy import StrategyBook  # noqa: E402
from nlp.compliance import (  # noqa: E402
    DATA_DIR,
    DEFAULT_VIEWS,
    MODEL_DIR,
    RULES,
    VIEWS,
    ComplianceClassifier,
    Example,
    load_corpus,
)

HELD_OUT = ("writer_d", "writer_i")
STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"
# The naive alternative a lender might write: block any line with a risky word.
KEYWORDS = re.compile("坐牢|抓|拘留|公安|警察|法院|起诉|立案|律师|通讯录|单位|领导|家人|父母|老婆|孩子|"
                      "上门|找你|老赖|骗子|不要脸|垃圾|滚|死|个人账户|微信|支付宝|套现|别的平台|"
                      "借.{0,3}还|手续费|利息|征信|黑名单|失信|曝光|朋友圈|jail|arrest|police|"
                      "lawyer|sue|family|employer|stupid|loser", re.I)


def template_examples(renders: int = 3, seed: int = 0) -> list[Example]:
    """Every template variant of every strategy, rendered with plausible random figures."""
    rng = random.Random(seed)
    seen: set[str] = set()
    for strategy in StrategyBook(STRATEGIES).strategies.values():
        for variants in strategy.templates.values():
            for variant in variants:
                for _ in range(renders):
                    values: defaultdict[str, str] = defaultdict(
                        lambda: f"{rng.randint(1, 20000)}.{rng.randint(0, 99):02d}")
                    month, day = rng.randint(1, 12), rng.randint(1, 28)
                    values.update(
                        lender=rng.choice(["回款消费金融", "安心借", "XX小贷"]),
                        masked_name=rng.choice(["张*", "李**", "王*"]), name="张伟",
                        channels="支付宝、微信", channel_name="支付宝", date=f"{month}月{day}日",
                        limit_date=f"{month}月{day}日", paid_on=f"{month}月{day}日",
                        next_due_date=f"{month}月{day}日", oldest_due_date=f"{month}月{day}日",
                        callback_when=rng.choice(["明天下午", "周五上午", "今晚"]),
                        hotline="400-800-1234", dpd=str(rng.randint(1, 120)),
                        days=str(rng.randint(1, 30)), count=str(rng.randint(2, 12)),
                        max_days=str(rng.randint(7, 30)), max_count=str(rng.randint(3, 12)),
                        remaining_note="", variant="", asked_channel="短信",
                        annual_rate_pct=f"{rng.uniform(7, 24):.1f}",
                        penalty_rate_pct=f"{rng.uniform(0.03, 0.05):.2f}",
                        penalty_rate_wan=str(rng.randint(3, 5)))
                    try:
                        seen.add(variant.format_map(values))
                    except (ValueError, IndexError, KeyError):
                        continue
    return [Example(text, frozenset(), "borrower", "templates") for text in sorted(seen)]


def _ctx(example: Example) -> UtteranceContext:
    if example.addressee == "borrower":
        return UtteranceContext(identity_verified=True, addressee="borrower")
    return UtteranceContext(identity_verified=False, addressee=example.addressee)  # type: ignore[arg-type]


def evaluate(examples: list[Example], model: ComplianceClassifier) -> dict[str, dict]:
    profile = load_profile("cn")
    gates = {
        "keyword_baseline": lambda e: bool(KEYWORDS.search(e.text)),
        "rules_only": lambda e: not check_utterance(e.text, profile, _ctx(e), None).allowed,
        "learned_only": lambda e: model.probabilities([e.text])[0]["any"] >= model.thresholds["any"],
        "gate": lambda e: not check_utterance(e.text, profile, _ctx(e), model).allowed,
    }
    report = {}
    for name, blocks in gates.items():
        caught: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        lawful = [0, 0]
        for example in examples:
            blocked = blocks(example)
            if example.rules:
                for rule in example.rules:
                    caught[rule][0] += blocked
                    caught[rule][1] += 1
            else:
                lawful[0] += blocked
                lawful[1] += 1
        hit = sum(c[0] for c in caught.values())
        total = sum(c[1] for c in caught.values())
        report[name] = {
            "violations_caught": f"{hit}/{total}", "recall": round(hit / max(total, 1), 3),
            "lawful_overblocked": f"{lawful[0]}/{lawful[1]}",
            "overblock_rate": round(lawful[0] / max(lawful[1], 1), 3),
            "per_rule": {r: f"{caught[r][0]}/{caught[r][1]}" for r in RULES if caught[r][1]},
        }
    return report


def latency(examples: list[Example], model: ComplianceClassifier) -> dict[str, float]:
    profile = load_profile("cn")
    ctx = UtteranceContext(identity_verified=True, addressee="borrower")
    check_utterance("预热", profile, ctx, model)
    samples = []
    for example in examples[:300]:
        start = time.perf_counter()
        check_utterance(example.text, profile, ctx, model)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[int(0.95 * len(samples)) - 1], 2), "n": len(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-only", action="store_true")
    parser.add_argument("--held-out", nargs="*", default=list(HELD_OUT))
    parser.add_argument("--views", nargs="+", default=list(DEFAULT_VIEWS), choices=sorted(VIEWS),
                        help="what the heads read: sentence encoders and character n-grams")
    parser.add_argument("--out", type=Path, default=MODEL_DIR,
                        help="model directory (another one to compare a variant)")
    args = parser.parse_args()
    files = sorted(DATA_DIR.glob("*.jsonl"))
    held = [f for f in files if f.stem in args.held_out]
    train = [f for f in files if f.stem not in args.held_out]
    if args.eval_only:
        model = ComplianceClassifier.load(args.out)
    else:
        examples = load_corpus(train) + template_examples()
        print(f"training on {len(examples)} lines from {[f.stem for f in train]} + templates",
              flush=True)
        started = time.perf_counter()
        model = ComplianceClassifier.train(examples, views=args.views)
        model.version = f"compliance-{len(examples)}"
        model.save(args.out)
        print(f"trained in {time.perf_counter() - started:.0f} s; thresholds "
              f"{ {k: round(v, 3) for k, v in model.thresholds.items()} }")
    evaluation = load_corpus(held)
    if not evaluation:
        print("no held-out lines: nothing measured")
        return
    report = {"held_out": [f.stem for f in held], "views": list(model.views),
              "lines": len(evaluation),
              "gates": evaluate(evaluation, model), "latency": latency(evaluation, model),
              "per_writer": {f.stem: {name: {k: v for k, v in gate.items() if k != "per_rule"}
                                      for name, gate in evaluate(load_corpus([f]), model).items()}
                             for f in held} if len(held) > 1 else {}}
    (args.out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1))
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
