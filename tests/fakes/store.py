"""An in-memory store of effects: promises (with supersede), restrictions, flags, pauses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.core import effects as fx


@dataclass
class MemoryStore:
    promises: list[dict[str, Any]] = field(default_factory=list)
    restrictions: list[tuple[str, str]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    paused: str | None = None
    callbacks: list[fx.Callback] = field(default_factory=list)
    ability: str = "normal"
    events: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, effects: list[fx.Effect]) -> None:
        for effect in effects:
            self.events.append(effect.to_dict())
            if isinstance(effect, fx.RecordPromise):
                for old in self.promises:
                    if old["status"] == "pending":
                        old["status"] = "cancelled"
                self.promises.append({"amount": effect.amount, "date": effect.due_date,
                                      "confirmed": effect.confirmed, "status": "pending",
                                      "plan": effect.plan})
            elif isinstance(effect, fx.ConfirmPromise):
                live = [p for p in self.promises if p["status"] == "pending"]
                if live:
                    live[-1]["confirmed"] = True
            elif isinstance(effect, fx.Restrict):
                self.restrictions.append((effect.reason, effect.channel))
            elif isinstance(effect, fx.Flag):
                self.flags.append(effect.flag)
            elif isinstance(effect, fx.PauseLoan):
                self.paused = effect.reason
            elif isinstance(effect, fx.Callback):
                self.callbacks.append(effect)
            elif isinstance(effect, fx.SetAbility):
                self.ability = effect.ability

    @property
    def live_promise(self) -> dict[str, Any] | None:
        live = [p for p in self.promises if p["status"] == "pending"]
        return live[-1] if live else None

    def ceased(self, channel: str) -> bool:
        return any(r == "cease_requested" and c in (channel, "all") for r, c in self.restrictions)
