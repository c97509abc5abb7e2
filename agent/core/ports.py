"""Small interfaces the session depends on; fakes for tests live in ``tests/fakes``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from agent.core.commands import Command
from agent.core.labels import NluResult


class Understanding(Protocol):
    commands: list[Command]
    whole: NluResult | None


class Understander(Protocol):
    """Text → commands (``nlp.commands.understand`` over the trained NLU)."""

    def __call__(self, text: str, nlu: Any, ref: datetime, *, expect: str | None = None,
                 channel: str = "chat", verified: bool = True,
                 in_negotiation: bool = False) -> Understanding: ...


class Parser(Protocol):
    def parse(self, text: str, ref: datetime | None = None) -> NluResult: ...

    def parse_batch(self, texts: list[str], ref: datetime | None = None) -> list[NluResult]: ...


class Renderer(Protocol):
    """Acts → wording (the strategy's templates)."""

    def choices(self, act: str, values: Mapping[str, Any]) -> tuple[str, ...]: ...


class TurnHandler(Protocol):
    async def handle(self, text: str, meta: dict[str, Any] | None = None) -> list[Any]: ...
