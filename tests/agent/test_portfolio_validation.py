"""The fast paths in portfolio validation accept and refuse exactly what the full rules do."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from agent.portfolio import _MONEY, Money

VALUES: list[Any] = [
    *(Decimal(v) for v in ("1.0000000", "1.00000000000000000000", "100000000000.0000000",
                           "1000000000000.000", "0E-20", "1E+11", "1E+12", "-0.0000001", "-0",
                           "1E+400", "NaN", "sNaN", "Infinity", "-1", "0.1234567",
                           "999999999999.999999", "416.67")),
    3, 0, -3, True, 10**12, 10**13, "1.5", " 2.50 ", "1e3", 1.5, float("nan"), None, "",
]


def _outcome(adapter: TypeAdapter[Any], value: Any) -> tuple[str, Any]:
    try:
        result = adapter.validate_python(value)
    except ValidationError as exc:
        return "error", [(e["type"], e["msg"], repr(e["input"])) for e in exc.errors()]
    return "ok", (type(result), repr(result))


@pytest.mark.parametrize("repeat", [1, 2])  # the second pass hits the cache of valid amounts
def test_cached_money_matches_the_full_check(repeat: int) -> None:
    cached, full = TypeAdapter(Money), TypeAdapter(_MONEY)
    for _ in range(repeat):
        for value in VALUES:
            assert _outcome(cached, value) == _outcome(full, value), value
