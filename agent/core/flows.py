"""Business flows as data: the schema the flow YAML is validated against at load time.

A flow is a list of steps. The engine (``agent.core.engine``) runs the top flow of the stack
until a step needs the borrower (a slot to collect, a read-back to agree) or the flow ends.
Step kinds:

* ``collect: slot`` + ``ask: act`` — ask until the slot is filled (from any turn);
* ``check: name`` — a policy check (limits); it may counter and wait for a new value;
* ``action: name`` — a registered action (record a promise, restrict a channel…);
* ``confirm: act`` — say the act and wait for yes/no; ``on_deny`` names what a no does
  (``ask_again`` the collected slots, ``cancel`` the flow, or a flow id to switch to);
* ``say: act`` — say something; ``end: reason`` — end the conversation.

``when`` on a step names a condition that must hold for the step to run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SLOTS = ("amount", "date", "count", "days", "callback_time", "channel", "plan_choice")
ACTIONS = ("default_amount", "record_promise", "confirm_promise", "offer_extension",
           "offer_installment", "offer_waiver", "record_plan", "hardship", "record_dispute",
           "check_payment", "record_cease", "record_complaint", "record_callback", "handoff",
           "third_party", "wrong_number", "refusal", "abuse", "goodbye")
CHECKS = ("promise_terms",)
CONDITIONS = ("needs_confirmation", "collecting", "not_collecting", "outbound", "voice",
              "channel_unknown", "vulnerable", "ends_channel")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Strict):
    collect: str | None = None
    ask: str | None = None
    check: str | None = None
    action: str | None = None
    confirm: str | None = None
    on_deny: str = "ask_again"
    say: str | None = None
    end: str | None = None
    when: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in ("collect", "check", "action", "confirm", "say", "end")
                 if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a step has exactly one of collect/check/action/confirm/say/end "
                             f"(got {kinds or 'none'})")
        if self.collect is not None:
            if self.collect not in SLOTS:
                raise ValueError(f"unknown slot {self.collect!r}; expected one of "
                                 f"{', '.join(SLOTS)}")
            if not self.ask:
                raise ValueError(f"collect {self.collect!r} needs an 'ask' act")
        if self.action is not None and self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")
        if self.check is not None and self.check not in CHECKS:
            raise ValueError(f"unknown check {self.check!r}")
        if self.when is not None and self.when.removeprefix("not ") not in CONDITIONS:
            raise ValueError(f"unknown condition {self.when!r}")
        return self

    @property
    def kind(self) -> str:
        for name in ("collect", "check", "action", "confirm", "say", "end"):
            if getattr(self, name) is not None:
                return name
        raise AssertionError("validated")


class Flow(_Strict):
    description: str = ""
    # Flows that change collection can interrupt anything; others stack on top.
    interrupting: bool = False
    steps: tuple[Step, ...] = Field(min_length=1)


class FlowBook(_Strict):
    flows: dict[str, Flow]

    def acts(self) -> set[str]:
        """Every act a flow can say (each needs a template)."""
        out: set[str] = set()
        for flow in self.flows.values():
            for step in flow.steps:
                out.update(a for a in (step.ask, step.confirm, step.say) if a)
        return out

    def check_against(self, flow_ids: tuple[str, ...], acts: set[str] | None = None) -> None:
        missing = [f for f in flow_ids if f not in self.flows]
        if missing:
            raise ValueError(f"flows: missing flow {missing[0]!r}")
        for name, flow in self.flows.items():
            for index, step in enumerate(flow.steps):
                if step.on_deny not in ("ask_again", "cancel", "end") and \
                        step.on_deny not in self.flows:
                    raise ValueError(f"flows.{name}.steps.{index}.on_deny: unknown target "
                                     f"{step.on_deny!r}")
                for act in (step.ask, step.confirm, step.say):
                    if act and acts is not None and act not in acts:
                        raise ValueError(f"flows.{name}.steps.{index}: unknown act {act!r}")


FlowKind = Literal["collect", "check", "action", "confirm", "say", "end"]
