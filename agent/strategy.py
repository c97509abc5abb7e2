"""Collection strategies: declarative YAML playbooks (segments, offers, wording), validated at load.

Files in ``strategies/`` are data only. ``routing.yaml`` names the champion and an optional
challenger; a stable hash of the borrower id assigns the arm. Files are re-read when they change,
so ops can tune a strategy without restarting the service.
"""

from __future__ import annotations

import hashlib
import random
import string
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent.core.commands import FLOW_IDS
from agent.core.flows import Flow, FlowBook

BUCKETS = ("current", "M1", "M2", "M3", "M4", "M5", "M6", "M6+")
ABILITIES = ("normal", "hardship")
WILLINGNESS = ("high", "medium", "low", "refuse", "none", "unknown")
CHANNELS = ("voice", "chat", "sms")
ESCALATIONS = ("request_human", "complaint", "vulnerable", "waiver_over_limit",
               "repeated_refusal", "unclear")

# Every template key the engine can word (``act`` or ``act:variant``); each needs a variant.
ACTS = (
    "opening_inbound", "opening_outbound", "opening_outbound_voice", "resume", "reprompt", "hold",
    "silence_goodbye", "verify.ask", "verify.ask:denied", "disclose.debt", "disclose.current", "disclose.debt:brief",
    "disclose.current:brief", "cease.recorded:unverified",
    "answer.balance:overdue", "answer.balance:current", "answer.balance:nothing_due",
    "answer.due_date:overdue", "answer.due_date:current", "answer.due_date:nothing_due",
    "answer.payment_method", "answer.payment_method:ok", "answer.payment_method:not_official",
    "answer.fees", "answer.early_settlement", "answer.credit_impact",
    "answer.overdue_status:yes", "answer.overdue_status:no",
    "answer.payment_history:still_due", "answer.payment_history:clear",
    "answer.payment_history:applied",
    "answer.payment_history:none", "answer.robot", "answer.legal", "answer.personal_account",
    "answer.collection_practice", "answer.greeting", "answer.identity_who", "answer.privacy",
    "answer.cannot_change_records",
    "promise.ask_amount", "promise.ask_amount:again", "promise.ask_date",
    "promise.ask_date:again", "promise.ask_date:payday", "promise.date_past",
    "promise.counter:date", "promise.counter:date_again", "promise.counter:amount",
    "promise.counter:amount_again", "promise.counter:both", "promise.counter:both_again",
    "promise.readback", "promise.recorded",
    "offer.extension", "offer.installment", "offer.waiver", "handoff:promise",
    "handoff:extension", "handoff:installment", "handoff:waiver", "handoff:vulnerable",
    "handoff:unclear",
    "plan.recorded:extension", "plan.recorded:installment", "plan.recorded:waiver",
    "hardship.ack", "hardship.ack:short", "hardship.vulnerable", "dispute.confirm",
    "dispute.recorded", "claim_paid.found:still_due", "claim_paid.found:clear",
    "claim_paid.not_found", "cease.confirm:channel", "cease.recorded", "complaint.recorded",
    "complaint.recorded:brief",
    "handoff", "callback.ask_time", "callback.recorded", "third_party.message",
    "wrong_number.recorded", "refusal.consequences", "refusal.end", "abuse.warn", "abuse.end",
    "clarify", "clarify:numbers", "clarify.offer_human", "cancelled", "anything_else",
    "goodbye",
)


class StrategyError(ValueError):
    """A strategy file is invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Strict):
    buckets: tuple[str, ...] = BUCKETS
    ability: tuple[str, ...] = ABILITIES
    willingness: tuple[str, ...] = WILLINGNESS

    @field_validator("buckets")
    @classmethod
    def _buckets(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _known(v, BUCKETS, "bucket")

    @field_validator("ability")
    @classmethod
    def _ability(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _known(v, ABILITIES, "ability")

    @field_validator("willingness")
    @classmethod
    def _willingness(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _known(v, WILLINGNESS, "willingness")


def _known(values: tuple[str, ...], allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}; expected one of {', '.join(allowed)}")
    return values


class Cadence(_Strict):
    cadence_days: int = Field(ge=1, le=60)
    max_per_day: int = Field(ge=1, le=10)


class Offers(_Strict):
    max_extension_days: int = Field(ge=0, le=180)
    max_installments: int = Field(ge=0, le=36)
    max_waiver_pct: float = Field(ge=0, le=100)


class PromiseLimits(_Strict):
    max_days_ahead: int = Field(ge=0, le=90)
    min_amount_pct: float = Field(ge=0, le=100)


class Segment(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    when: When = When()
    tone: Literal["friendly", "firm", "caring"] = "friendly"
    channels: dict[str, Cadence]
    offers: Offers
    promise: PromiseLimits
    escalate: tuple[str, ...] = ()

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: dict[str, Cadence]) -> dict[str, Cadence]:
        _known(tuple(v), CHANNELS, "channel")
        return v

    @field_validator("escalate")
    @classmethod
    def _escalate(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _known(v, ESCALATIONS, "escalation")

    def matches(self, bucket: str, ability: str, willingness: str) -> bool:
        return (bucket in self.when.buckets and ability in self.when.ability
                and willingness in self.when.willingness)


class Strategy(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")
    version: int = Field(ge=1)
    description: str = ""
    extends: str | None = None  # a sibling file whose templates and flows this one overrides
    segments: tuple[Segment, ...] = Field(min_length=1)
    templates: dict[str, tuple[str, ...]]
    # Business flows (strategies/flows/*.yaml) with this strategy's step overrides merged in.
    flows: dict[str, Flow] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> Strategy:
        unknown = sorted(set(self.templates) - set(ACTS))
        if unknown:
            raise ValueError(f"templates: unknown act {unknown[0]!r}")
        missing = [act for act in ACTS if not self.templates.get(act)]
        if missing:
            raise ValueError(f"templates: missing act {missing[0]!r} (every act needs a variant)")
        ids = [s.id for s in self.segments]
        if len(set(ids)) != len(ids):
            raise ValueError("segments: duplicate segment id")
        for act, variants in self.templates.items():
            for variant in variants:
                _check_placeholders(variant, f"templates.{act}")
        if self.flows:
            keys = {k.split(":")[0] for k in self.templates}
            self.flow_book.check_against(FLOW_IDS, keys)
        return self

    @property
    def flow_book(self) -> FlowBook:
        return FlowBook(flows=self.flows)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def segment_for(self, bucket: str, ability: str = "normal",
                    willingness: str = "unknown") -> Segment:
        for segment in self.segments:
            if segment.matches(bucket, ability, willingness):
                return segment
        return self.segments[-1]

    def render(self, act: str, values: Mapping[str, Any], rng: random.Random | None = None) -> str:
        """One variant of ``act`` with values filled in; variants keep the agent from sounding canned."""
        return self.choices(act, values)[(rng or random).randrange(
            len(self.choices(act, values)))].format_map(_Values(values))

    def choices(self, act: str, values: Mapping[str, Any]) -> tuple[str, ...]:
        """The variants for an act (``act:variant`` when the engine named a variant)."""
        variant = values.get("variant")
        if variant and f"{act}:{variant}" in self.templates:
            return self.templates[f"{act}:{variant}"]
        if act in self.templates:
            return self.templates[act]
        for key, texts in self.templates.items():  # an act known only by its variants
            if key.startswith(act + ":"):
                return texts
        raise KeyError(act)


PLACEHOLDERS = {
    "lender", "masked_name", "name", "dpd", "total_due", "penalty", "overdue", "next_due_date",
    "next_due_amount", "outstanding", "oldest_due_date", "channels", "channel_name", "annual_rate_pct",
    "penalty_rate_pct", "settle", "limit_date", "min_amount", "date", "amount", "days", "count",
    "per", "waiver", "after_waiver", "max_days", "max_count", "paid_on", "paid_amount",
    "remaining_note", "hotline", "callback_when", "variant", "asked_channel",
    "penalty_rate_wan",
}


def _check_placeholders(text: str, where: str) -> None:
    for _, field, _, _ in string.Formatter().parse(text):
        if field is not None and field not in PLACEHOLDERS:
            raise ValueError(f"{where}: unknown placeholder {{{field}}}")


class _Values(dict[str, Any]):
    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)

    def __missing__(self, key: str) -> str:
        return "—"


class Routing(_Strict):
    champion: str
    challenger: dict[str, Any] | None = None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise StrategyError(f"{path.name}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise StrategyError(f"{path.name}: cannot read: {exc}") from None
    if not isinstance(raw, dict):
        raise StrategyError(f"{path.name}: top level must be a mapping")
    return raw


def load_flows(directory: Path) -> dict[str, Any]:
    """The shared business flows (``strategies/flows/*.yaml``), each file validated."""
    flows: dict[str, Any] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        raw = _read_yaml(path)
        try:
            book = FlowBook.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise StrategyError(f"flows/{path.name}: {key}: {err['msg']}") from None
        flows.update(raw.get("flows") or {})
        _ = book
    return flows


def _merged(path: Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    raw = _read_yaml(path)
    parent_name = raw.get("extends")
    if parent_name:
        if parent_name in seen or parent_name == path.name:
            raise StrategyError(f"{path.name}: extends: circular {parent_name!r}")
        parent_path = path.parent / str(parent_name)
        if not parent_path.is_file():
            raise StrategyError(f"{path.name}: extends: no file {parent_name!r}")
        parent = _merged(parent_path, (*seen, path.name))
        raw = {**raw, "templates": {**parent.get("templates", {}), **(raw.get("templates") or {})},
               "flows": {**parent.get("flows", {}), **(raw.get("flows") or {})}}
    return raw


def load_strategy_file(path: Path) -> Strategy:
    raw = _merged(path)
    flows_dir = path.parent / "flows"
    if flows_dir.is_dir():
        raw = {**raw, "flows": {**load_flows(flows_dir), **(raw.get("flows") or {})}}
    try:
        return Strategy.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise StrategyError(f"{path.name}: {key}: {err['msg']}{more}") from None


def arm_for(borrower_id: str, share: float) -> str:
    """Stable champion/challenger split: the same borrower always lands in the same arm."""
    bucket = int.from_bytes(hashlib.sha256(borrower_id.encode()).digest()[:4], "big") % 10_000
    return "challenger" if bucket < share * 10_000 else "champion"


class StrategyBook:
    """All strategies of a directory plus routing; re-reads files whose modification time changed."""

    def __init__(self, directory: Path, check_every_s: float = 2.0) -> None:
        self.directory = Path(directory)
        self.check_every_s = check_every_s
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, float], ...] = ()
        self._checked = 0.0
        self.strategies: dict[str, Strategy] = {}
        self.champion = ""
        self.challenger: str | None = None
        self.challenger_share = 0.0
        self._load()

    def _files(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*.yaml"))

    def _load(self) -> None:
        if not self.directory.is_dir():
            raise StrategyError(f"strategies directory not found: {self.directory}")
        strategies: dict[str, Strategy] = {}
        routing: Routing | None = None
        for path in self._files():
            if path.name == "routing.yaml":
                try:
                    routing = Routing.model_validate(yaml.safe_load(path.read_text("utf-8")))
                except (ValidationError, yaml.YAMLError) as exc:
                    raise StrategyError(f"routing.yaml: {exc}") from None
                continue
            strategy = load_strategy_file(path)
            if strategy.ref in strategies:
                raise StrategyError(f"{path.name}: {strategy.ref} defined twice")
            strategies[strategy.ref] = strategy
        if not strategies:
            raise StrategyError(f"{self.directory}: no strategy files")
        champion = routing.champion if routing else sorted(strategies)[0]
        if champion not in strategies:
            raise StrategyError(f"routing.yaml: champion {champion!r} is not defined "
                                f"(known: {', '.join(sorted(strategies))})")
        challenger, share = None, 0.0
        if routing and routing.challenger:
            challenger = str(routing.challenger.get("strategy", ""))
            share = float(routing.challenger.get("share", 0))
            if challenger not in strategies:
                raise StrategyError(f"routing.yaml: challenger.strategy {challenger!r} is not defined")
            if not 0 <= share <= 1:
                raise StrategyError("routing.yaml: challenger.share must be between 0 and 1")
        self.strategies, self.champion = strategies, champion
        self.challenger, self.challenger_share = challenger, share
        self._stamp = self._current_stamp()

    def _current_stamp(self) -> tuple[tuple[str, float], ...]:
        return tuple((p.name, p.stat().st_mtime) for p in self._files())

    def refresh(self, force: bool = False) -> None:
        """Reload if files changed; a broken edit keeps the last good strategies running."""
        now = time.monotonic()
        if not force and now - self._checked < self.check_every_s:
            return
        with self._lock:
            self._checked = now
            if force or self._current_stamp() != self._stamp:
                try:
                    self._load()
                except StrategyError:
                    if force:
                        raise

    def for_borrower(self, borrower_id: str) -> Strategy:
        self.refresh()
        if self.challenger and arm_for(borrower_id, self.challenger_share) == "challenger":
            return self.strategies[self.challenger]
        return self.strategies[self.champion]

    def arm_of(self, strategy: Strategy) -> str:
        return "challenger" if self.challenger and strategy.ref == self.challenger else "champion"

    def get(self, ref: str) -> Strategy | None:
        self.refresh()
        return self.strategies.get(ref)


def check_directory(directory: Path) -> list[str]:
    """Every problem in a strategies directory (for ``huikuan strategies check``)."""
    problems = []
    for path in sorted(Path(directory).glob("*.yaml")):
        if path.name == "routing.yaml":
            continue
        try:
            load_strategy_file(path)
        except StrategyError as exc:
            problems.append(str(exc))
    if not problems:
        try:
            StrategyBook(Path(directory))
        except StrategyError as exc:
            problems.append(str(exc))
    return problems
