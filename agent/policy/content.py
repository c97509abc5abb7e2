"""Content rules: judge what the *agent* is about to say (never the borrower).

Every agent utterance passes :func:`check_utterance` before it is sent; a blocked
one is replaced by :func:`safe_fallback`. The matcher follows the catalogue's
notes: single strong phrases (坐牢, 老赖) block on their own, while lawful
keywords (征信, 起诉, 法院) block only in combination with imminence, certainty,
criminal framing, third parties or a false identity, and hedged or negated
statements (可能/如果, 我们不会…) stay allowed. All patterns are profile data,
precompiled at load, so a check is a few dozen regex searches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from agent.policy.profile import CompiledProfile, CompiledRule, CompiledSpec, Profile, load_profile

Addressee = Literal["borrower", "third_party", "unknown"]


@dataclass(frozen=True, slots=True)
class UtteranceContext:
    """Who the agent is talking to and where in the contact it is."""

    identity_verified: bool = False
    addressee: Addressee = "unknown"
    is_opening: bool = False
    channel: str = "voice"

    @property
    def verified_borrower(self) -> bool:
        """Only the verified borrower may hear anything about the debt."""
        return self.identity_verified and self.addressee == "borrower"


#: Context for a bare text check (``POST /api/v1/compliance/check``): the verified
#: borrower mid-conversation, i.e. only what is unlawful to say to anyone.
VERIFIED_BORROWER = UtteranceContext(identity_verified=True, addressee="borrower")


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    message: str
    citation: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "message": self.message, "citation": self.citation}


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    violations: list[Violation] = field(default_factory=list)

    @property
    def rules(self) -> list[str]:
        return [v.rule for v in self.violations]

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "violations": [v.to_dict() for v in self.violations]}


# --------------------------------------------------------------------------- matching


class _Text:
    """Normalized utterance with lazily split sentences and clauses."""

    __slots__ = ("cp", "norm", "_sentences", "_clauses")

    def __init__(self, cp: CompiledProfile, text: str) -> None:
        self.cp = cp
        self.norm = cp.normalize(text)
        self._sentences: list[str] | None = None
        self._clauses: list[str] | None = None

    def units(self, scope: str) -> list[str]:
        if scope == "utterance":
            return [self.norm]
        if self._sentences is None:
            self._sentences = [s for s in self.cp.sentence_re.split(self.norm) if s.strip()]
        if scope == "sentence":
            return self._sentences
        if self._clauses is None:
            self._clauses = [
                c for s in self._sentences for c in self.cp.clause_re.split(s) if c.strip()
            ]
        return self._clauses


def _negated(cp: CompiledProfile, unit: str, start: int) -> bool:
    """A negator shortly before the hit, inside the same clause (我们不会…, will not…)."""
    window = unit[max(0, start - cp.negation_window) : start]
    if not window:
        return False
    cut = 0
    for d in cp.clause_re.finditer(window):
        cut = d.end()
    window = window[cut:]
    return cp.negation_re.search(window) is not None


def _first(cp: CompiledProfile, rx: re.Pattern[str], unit: str, negatable: bool) -> str | None:
    first = rx.search(unit)
    if first is None:
        return None
    if not negatable or not _negated(cp, unit, first.start()):
        return first.group(0)
    for m in rx.finditer(unit, first.start() + 1):
        if not _negated(cp, unit, m.start()):
            return m.group(0)
    return None


def _match_spec(cp: CompiledProfile, spec: CompiledSpec, text: _Text) -> str | None:
    for unit in text.units(spec.scope):
        if spec.any_re is not None:
            hit = _first(cp, spec.any_re, unit, spec.negatable)
            if hit is None:
                continue
        else:
            hit = unit
            for rx in spec.all_res:
                if _first(cp, rx, unit, spec.negatable) is None:
                    hit = None
                    break
            if hit is None:
                continue
        if spec.unless_re is not None and spec.unless_re.search(unit):
            continue
        return hit
    return None


def _short(s: str, n: int = 40) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _mask(digits: str) -> str:
    return "*" * max(0, len(digits) - 4) + digits[-4:]


_DIGIT_RUN = re.compile(r"\d(?:[ \-]?\d)*[xX]?")
_NON_DIGIT = re.compile(r"\D")


def _det_pii(rule: CompiledRule, text: _Text, ctx: UtteranceContext) -> str | None:
    x = rule.extra
    for m in _DIGIT_RUN.finditer(text.norm):
        digits = _NON_DIGIT.sub("", m.group(0))
        if len(digits) >= x["digit_run_min"] and digits not in x["allowed"]:
            return f"unmasked number {_mask(digits)}"
    m2 = x["numeral_re"].search(text.norm)
    if m2:
        return f"unmasked number (spoken digits, {len(m2.group(0))} long)"
    if x["extra_re"] is not None:
        m3 = x["extra_re"].search(text.norm)
        if m3:
            return f"unmasked number {_mask(_NON_DIGIT.sub('', m3.group(0)))}"
    return None


def _det_ai(rule: CompiledRule, text: _Text, ctx: UtteranceContext) -> str | None:
    x = rule.extra
    if ctx.is_opening and x["require"] and not x["disclosure_re"].search(text.norm):
        return "opening lacks AI disclosure"
    return None


def _det_ident(rule: CompiledRule, text: _Text, ctx: UtteranceContext) -> str | None:
    x = rule.extra
    if not ctx.is_opening:
        return None
    if not x["institution_re"].search(text.norm):
        return "opening does not name the institution"
    # The purpose may only be stated once the borrower is verified (no debt talk to others).
    if x["require_purpose"] and ctx.verified_borrower and not x["purpose_re"].search(text.norm):
        return "opening does not state the purpose"
    return None


def _det_rate(rule: CompiledRule, text: _Text, ctx: UtteranceContext) -> str | None:
    x = rule.extra
    for m in x["rate_re"].finditer(text.norm):
        try:
            value = float(m.group("value"))
        except (TypeError, ValueError):
            continue
        s = m.group(0)
        if any(u in s for u in x["daily"]):
            annual = value * 365
        elif any(u in s for u in x["monthly"]):
            annual = value * 12
        else:
            annual = value
        if annual > x["max"] + 1e-9:
            return f"{s} (≈{annual:.1f}%/yr > {x['max']:g}%)"
    return None


_DETECTORS: dict[str, Callable[[CompiledRule, _Text, UtteranceContext], str | None]] = {
    "pii_numbers": _det_pii,
    "opening_ai_disclosure": _det_ai,
    "opening_identification": _det_ident,
    "rate_cap": _det_rate,
}


# The line addresses someone about the debtor: asks them to pass something on, names their
# relation to "him/her", or speaks of "your husband / son / colleague" owing.
_OTHER_ADDRESSEE = re.compile(
    "(转告|告诉|提醒|通知|催催?|劝劝?|叫|让|跟)(一下)?(他|她|你(老公|老婆|丈夫|妻子|儿子|女儿|爸|妈|父亲|母亲|"
    "哥|姐|弟|妹|朋友|同事))"
    "|(您|你)(是|作为)(他|她)(的)?(家人|亲戚|朋友|同事|领导|紧急联系人|担保人|老婆|老公|爱人|"
    "妻子|丈夫|父亲|母亲|爸|妈|哥|姐|弟|妹|表|堂|儿子|女儿|室友|房东)"
    "|(你|您)(老公|老婆|丈夫|妻子|儿子|女儿|爸爸|妈妈|父亲|母亲|哥哥|姐姐|弟弟|妹妹|同事|朋友)"
    "(他|她)?(在我们|在我司|欠|借|逾期|没还|拖)"
    "|tell (him|her)|(your|you're his|you're her) (husband|wife|son|daughter|brother|sister|"
    "father|mother|colleague|friend)", re.I)


def speaks_to_someone_else(text: str) -> bool:
    return _OTHER_ADDRESSEE.search(text) is not None


# The rule ids a learned classifier (``nlp.compliance``, injected: policy stays free of nlp)
# speaks; it is consulted only for profiles that have all of them.
LEARNED_RULES = ("threat", "insult", "false_legal_claim", "impersonation",
                 "third_party_disclosure", "exposure_threat", "induce_illegal_funding",
                 "illegal_debt")


class LearnedClassifier(Protocol):
    thresholds: dict[str, float]

    def probabilities(self, texts: Sequence[str]) -> list[dict[str, float]]: ...


# Below this "any rule" probability the learned model is confident a line is lawful, and a
# keyword-shaped rule hit on it is taken for the lawful use of a risky word (起诉, 征信, 律师…)
# or a warning against the practice (别去别的平台借, 不会坐牢). Chosen on two writers the model
# had not seen: 0.05 → 0.3 cut the gate's over-blocking 9.2% → 6.6% for 0.7 points of recall.
LAWFUL_VETO = 0.3


def check_utterance(
    text: str, profile: Profile | None = None, ctx: UtteranceContext | None = None,
    classifier: LearnedClassifier | None = None,
) -> Verdict:
    """Check one agent utterance; at most one violation per rule id, in profile order.

    ``profile`` defaults to ``cn``; ``ctx`` defaults to :data:`VERIFIED_BORROWER`
    (what a bare text check means). The profile's precise rules run first; where the profile
    is Chinese and a learned classifier is given (``None``: rules only), it
    adds what the rules missed and vetoes a rule hit it is confident is a lawful use of a
    risky word. Context-only rules (third-party disclosure by who is listening, openings,
    numbers) are never vetoed. Pure function: no I/O after loading.
    """
    profile = profile if profile is not None else load_profile("cn")
    ctx = ctx if ctx is not None else VERIFIED_BORROWER
    if ctx.verified_borrower and speaks_to_someone_else(text):
        # What the text itself shows counts: "please tell him…" is not said to the debtor.
        ctx = UtteranceContext(identity_verified=False, addressee="third_party",
                               is_opening=ctx.is_opening, channel=ctx.channel)
    cp = profile.compiled
    t = _Text(cp, text)
    hits: dict[str, str] = {}
    for rule in cp.rules:
        if rule.not_verified_only and ctx.verified_borrower:
            continue
        detail: str | None = None
        for spec in rule.specs:
            hit = _match_spec(cp, spec, t)
            if hit is not None:
                detail = f"「{_short(hit)}」"
                break
        if detail is None and rule.detector is not None:
            detail = _DETECTORS[rule.detector](rule, t, ctx)
        if detail is not None:
            hits[rule.id] = detail
    model = classifier if classifier is not None and all(
        profile.enabled(r) for r in LEARNED_RULES) else None
    if model is not None and text.strip():
        probs = model.probabilities([text])[0]
        for rule_id in list(hits):
            vetoable = rule_id in LEARNED_RULES and not (
                rule_id == "third_party_disclosure" and not ctx.verified_borrower)
            if vetoable and probs["any"] < LAWFUL_VETO:
                del hits[rule_id]
        if probs["any"] >= model.thresholds["any"]:
            # Disclosure depends on who listens: never to the verified borrower himself.
            candidates = [r for r in LEARNED_RULES if not (
                r == "third_party_disclosure" and ctx.verified_borrower)]
            named = [r for r in candidates if probs[r] >= model.thresholds[r]]
            # "Some rule" without a clear one: the likeliest, if near its own threshold; not
            # for the verified borrower, where the "any" score mostly reflects debt talk, nor
            # when a precise rule already explains it.
            if not named and not ctx.verified_borrower and not hits:
                best = max(candidates, key=probs.__getitem__)
                if probs[best] >= 0.5 * model.thresholds[best]:
                    named = [best]
            for rule_id in named:
                if rule_id not in hits and profile.enabled(rule_id):
                    hits[rule_id] = f"learned classifier, p={probs[rule_id]:.2f}"
    violations = [Violation(rule.id, f"{rule.message}: {hits[rule.id]}",
                            profile.rule(rule.id).citation)
                  for rule in cp.rules if rule.id in hits]
    return Verdict(allowed=not violations, violations=violations)


# --------------------------------------------------------------------------- fallback


def safe_fallback(
    reason_rule: str, profile: Profile | None = None, ctx: UtteranceContext | None = None
) -> str:
    """Polite, compliant text to say instead of a blocked utterance.

    Chosen by context first (an opening must still identify and disclose AI; a
    third party must hear nothing about the debt), then by the rule that fired.
    Each text passes :func:`check_utterance` in the context it is chosen for.
    """
    profile = profile if profile is not None else load_profile("cn")
    fb = profile.fallbacks
    if ctx is not None and ctx.is_opening:
        key = "opening"
    elif ctx is not None and not ctx.verified_borrower:
        key = "third_party"
    else:
        key = reason_rule
    text = fb.get(key) or fb["default"]
    return text.replace("{lender}", _lender_display(profile))


def _lender_display(profile: Profile) -> str:
    if profile.enabled("missing_identification"):
        names = profile.params("missing_identification").lender_name
        if names:
            return names[0]
    return profile.fallbacks.get("lender_placeholder", "")
