"""Quality assurance of whole conversations (质检): every agent line through the content gate,
the required disclosures, and a score a supervisor can sort by.

Works on any transcript, the product's own or a human collector's call from another system.
Pure: a transcript and a profile in, a scorecard out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.policy.content import LearnedClassifier, UtteranceContext, check_utterance
from agent.policy.profile import Profile

Speaker = Literal["agent", "borrower"]
RECORDING_NOTICE = re.compile("录音|录制|recorded|recording", re.I)
# Points off per finding; a violation weighs far more than a missing notice.
VIOLATION_PENALTY = 25
DISCLOSURE_PENALTY = 10


@dataclass(frozen=True)
class TranscriptTurn:
    speaker: Speaker
    text: str


@dataclass(frozen=True)
class QaContext:
    addressee: Literal["borrower", "third_party", "unknown"] = "borrower"
    identity_verified: bool = True
    channel: str = "voice"
    agent_is_ai: bool = True  # a human collector's call needs no AI disclosure


@dataclass
class Scorecard:
    violations: list[dict[str, Any]] = field(default_factory=list)
    disclosures: dict[str, bool] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # required disclosures not heard
    score: int = 100

    def to_dict(self) -> dict[str, Any]:
        by_rule: dict[str, int] = {}
        for v in self.violations:
            by_rule[v["rule"]] = by_rule.get(v["rule"], 0) + 1
        return {"violations": self.violations, "disclosures": self.disclosures,
                "missing_disclosures": self.missing, "score": self.score,
                "violations_by_rule": by_rule, "flags": sorted(by_rule)}


def _extra(profile: Profile, detector: str) -> dict[str, Any] | None:
    for rule in profile.compiled.rules:
        if rule.detector == detector:
            return rule.extra
    return None


def score_transcript(turns: Sequence[TranscriptTurn], profile: Profile,
                     context: QaContext | None = None,
                     classifier: LearnedClassifier | None = None) -> Scorecard:
    context = context or QaContext()
    ctx = UtteranceContext(identity_verified=context.identity_verified,
                           addressee=context.addressee, channel=context.channel)
    card = Scorecard()
    agent_lines = [(i, t.text) for i, t in enumerate(turns) if t.speaker == "agent"]
    for index, text in agent_lines:
        verdict = check_utterance(text, profile, ctx, classifier)
        for v in verdict.violations:
            card.violations.append({"turn": index, "rule": v.rule, "message": v.message,
                                    "citation": v.citation})
    spoken = profile.compiled.normalize("\n".join(text for _, text in agent_lines))
    identification = _extra(profile, "opening_identification")
    ai = _extra(profile, "opening_ai_disclosure")
    card.disclosures = {
        "institution": bool(identification and identification["institution_re"].search(spoken)),
        "ai": bool(ai and ai["disclosure_re"].search(spoken)),
        "recording": bool(RECORDING_NOTICE.search(spoken)),
    }
    required = ["institution", "recording"] + (["ai"] if context.agent_is_ai else [])
    if context.channel != "voice":
        required.remove("recording")
    card.missing = sorted(name for name in required if not card.disclosures[name])
    card.score = max(0, 100 - VIOLATION_PENALTY * len(card.violations)
                     - DISCLOSURE_PENALTY * len(card.missing))
    return card
