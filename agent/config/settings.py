"""One validated settings object for the whole service (env prefix ``HUIKUAN_``)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Service configuration; every field can be set as ``HUIKUAN_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="HUIKUAN_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path.cwd() / ".huikuan")
    database_url: str | None = None
    api_key: SecretStr | None = None
    # HMAC secret for chat session tokens; generated and stored in data_dir when unset.
    session_secret: SecretStr | None = None
    chat_token_ttl_s: int = 30 * 60
    # Limits before work (requests, websockets), so no unauthenticated client can exhaust us.
    max_body_bytes: int = 64 * 1024 * 1024  # portfolio uploads and call recordings only
    max_small_body_bytes: int = 256 * 1024  # every other route
    max_message_chars: int = 2000
    max_ws_frame_bytes: int = 64 * 1024  # uvicorn's cap on one websocket message
    max_media_frame_bytes: int = 16 * 1024  # a 20 ms Twilio media event is ~400 bytes
    ws_connections_per_client: int = 256
    ws_start_timeout_s: float = 10.0  # a chat socket must send its start frame by then
    media_start_timeout_s: float = 10.0
    chat_idle_timeout_s: float = 15 * 60  # an idle chat is ended (and its conversation closed)
    chat_message_rate: float = 1.0  # per chat token: sustained messages per second …
    chat_message_burst: int = 8  # … and how many at once
    chat_session_rate: float = 20.0  # chat session tokens issued per second per API client
    max_turns_per_conversation: int = 200
    media_token_ttl_s: int = 10 * 60
    # Benchmarks only: the bare websocket echo baseline of scripts/bench_chat.py.
    bench_echo: bool = False
    # The learned compliance classifier beside the rules for /compliance/check and QA.
    compliance_classifier: bool = True
    widget_frame_ancestors: str = "*"
    plan_concurrency: int = 1  # contact plans computed at once (each is CPU-heavy)
    lender_name: str = "回款消费金融"
    complaint_hotline: str = "400-800-1234"
    payment_channels: tuple[str, ...] = ("app", "alipay", "wechat", "bank_transfer")
    jurisdiction: str = "cn"
    # A promise is judged at the end of its due date plus this many days (borrower's time).
    promise_grace_days: int = Field(default=1, ge=0, le=60)
    strategies_dir: Path = REPO_ROOT / "strategies"
    nlu_model_dir: Path | None = None
    asr: str | None = None  # "whisper" | "vosk"
    asr_model: str | None = None
    endpointing: str | None = None  # Whisper's: "learned" (Silero VAD + Smart Turn) | "energy"
    tts: str | None = None  # "espeak"
    recordings_retention_days: int = 5 * 365
    public_url: str = "http://127.0.0.1:8000"
    telephony: str | None = None  # "twilio"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_base_url: str = "https://api.twilio.com"
    twilio_from_number: str | None = None

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'huikuan.db'}"

    def ensure_data_dir(self) -> Path:
        """The data directory, owner-only: it holds the database, keys and recordings."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.data_dir.stat().st_mode & 0o077:
            self.data_dir.chmod(0o700)
        return self.data_dir

    def _stored_secret(self, filename: str) -> str:
        path = self.ensure_data_dir() / filename
        if path.exists():
            return path.read_text().strip()
        value = secrets.token_urlsafe(32)
        path.write_text(value + "\n")
        path.chmod(0o600)
        return value

    def resolved_api_key(self) -> tuple[str, bool]:
        """The API key and whether it was generated just now (so ``serve`` prints it once)."""
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key.get_secret_value(), False
        path = self.ensure_data_dir() / "api_key"
        existed = path.exists()
        return self._stored_secret("api_key"), not existed

    def resolved_session_secret(self) -> bytes:
        if self.session_secret is not None and self.session_secret.get_secret_value():
            return self.session_secret.get_secret_value().encode()
        return self._stored_secret("session_secret").encode()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
