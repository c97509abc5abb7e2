"""Composition root: the only module that picks concrete implementations from settings."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from agent.config.settings import Settings
from agent.store.db import make_engine, migrate


def system_clock() -> datetime:
    return datetime.now(UTC)


class Lazy:
    """A value built once on first use (thread-safe): heavy models load when first needed
    or at start-up by ``Services.warm_up``, never per request."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._value: Any = None
        self._lock = threading.Lock()
        self._loaded = False

    def get(self) -> Any:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._value = self._factory()
                    self._loaded = True
        return self._value


@dataclass
class Services:
    settings: Settings
    engine: Engine
    api_key: str
    api_key_generated: bool = False
    clock: Callable[[], datetime] = system_clock
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._nlu = Lazy(self._load_nlu)
        self._policy = Lazy(self._load_policy)
        self._strategies = Lazy(self._load_strategies)
        self._recognizer = Lazy(self._load_recognizer)
        self._synthesizer = Lazy(self._load_synthesizer)
        self.session_secret = self.settings.resolved_session_secret()

    # -- language understanding -------------------------------------------------------------
    def _load_nlu(self) -> Any:
        if "nlu" in self.overrides:
            return self.overrides["nlu"]
        from nlp.pipeline import NluPipeline

        return NluPipeline.load(self.settings.nlu_model_dir)

    @property
    def nlu(self) -> Any:
        return self._nlu.get()

    # -- compliance and strategies ---------------------------------------------------------
    def _load_policy(self) -> Any:
        from agent.policy.profile import load_profile

        return load_profile(self.settings.jurisdiction)

    @property
    def policy(self) -> Any:
        return self._policy.get()

    @property
    def compliance_classifier(self) -> Any:
        """The learned compliance classifier beside the rules (None when turned off or not
        installed); ~2 ms a line, so it gates every agent utterance too."""
        if not self.settings.compliance_classifier:
            return None
        from nlp.compliance import shared_classifier

        return shared_classifier()

    def _load_strategies(self) -> Any:
        from agent.strategy import StrategyBook

        return StrategyBook(self.settings.strategies_dir)

    @property
    def strategies(self) -> Any:
        return self._strategies.get()

    # -- speech ------------------------------------------------------------------------------
    def _load_recognizer(self) -> Any:
        if "recognizer" in self.overrides:
            return self.overrides["recognizer"]
        from voice.asr.factory import recognizer_from_settings

        return recognizer_from_settings(self.settings.asr, self.settings.asr_model,
                                        data_dir=self.settings.data_dir,
                                        endpointing=self.settings.endpointing)

    @property
    def recognizer(self) -> Any:
        return self._recognizer.get()

    def _load_synthesizer(self) -> Any:
        if "synthesizer" in self.overrides:
            return self.overrides["synthesizer"]
        from voice.tts.base import synthesizer_from_settings

        return synthesizer_from_settings(self.settings.tts, self.settings.data_dir / "tts-cache")

    @property
    def synthesizer(self) -> Any:
        return self._synthesizer.get()

    def telephony(self) -> Any:
        """The configured provider; None when calls cannot be placed from this install."""
        if "telephony" in self.overrides:
            return self.overrides["telephony"]
        if (self.settings.telephony or "").lower() != "twilio":
            return None
        from voice.telephony.twilio_rest import TwilioTelephony

        token = self.settings.twilio_auth_token
        return TwilioTelephony(self.settings.twilio_account_sid,
                               token.get_secret_value() if token else None,
                               base_url=self.settings.twilio_base_url)

    def warm_up(self, voice: bool = True) -> None:
        """Load every model now so a missing or broken one fails at start-up, not mid-call."""
        _ = self.policy, self.strategies, self.nlu
        if voice:
            _ = self.recognizer, self.synthesizer


def _owner_only(data_dir: Path) -> None:
    """Tighten files an older version left group- or world-readable."""
    for path in data_dir.rglob("*"):
        with contextlib.suppress(OSError):
            mode = path.stat().st_mode
            if mode & 0o077:
                path.chmod(0o700 if path.is_dir() else 0o600)


def build_services(settings: Settings | None = None, **overrides: Any) -> Services:
    settings = settings or Settings()
    # Everything the service writes (database, WAL, keys, recordings) is owner-only.
    os.umask(0o077)
    settings.ensure_data_dir()
    _owner_only(settings.data_dir)
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    api_key, generated = settings.resolved_api_key()
    clock = overrides.pop("clock", system_clock)
    return Services(settings=settings, engine=engine, api_key=api_key,
                    api_key_generated=generated, clock=clock, overrides=overrides)
