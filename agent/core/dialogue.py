"""The dialogue's public names (kept stable for callers): the engine lives in ``engine.py``.

The hand-written state machine that used to live here failed most realistic conversations;
it was replaced by commands + a flow stack (``agent.core.engine``). This module re-exports
the types callers import from ``agent.core.dialogue``.
"""

from __future__ import annotations

from agent.core.effects import Effect
from agent.core.engine import (
    ENDED,
    MAIN,
    OUTCOME_RANK,
    VERIFY,
    Decision,
    DialogueState,
    Engine,
    LoanFacts,
    PaymentFact,
    new_state,
)

__all__ = ["ENDED", "MAIN", "OUTCOME_RANK", "VERIFY", "Decision", "DialogueState", "Effect",
           "Engine", "LoanFacts", "PaymentFact", "new_state"]
