"""A renderer that says the act and its values: tests read behaviour, not wording."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FakeRenderer:
    def choices(self, act: str, values: Mapping[str, Any]) -> tuple[str, ...]:
        shown = ",".join(f"{k}={v}" for k, v in sorted(values.items()) if k != "variant")
        return (f"<{act}:{values.get('variant', '')}|{shown}>",)
