"""Rule listing for an API or console: how firm each rule is and where it comes from.

A compliance officer needs the status label (LAW/STD/SRO/CONV/DERIVED, ``[2nd]``)
next to each rule id to judge how much weight it carries; this flattens a
profile into JSON-ready rows (phrase lists stay in the YAML; only typed
parameters are listed).
"""

from __future__ import annotations

from typing import Any

from agent.policy.profile import Profile, load_profile


def list_rules(
    profile: Profile | None = None, include_disabled: bool = True
) -> list[dict[str, Any]]:
    """One row per rule, in profile order."""
    profile = profile if profile is not None else load_profile("cn")
    rows: list[dict[str, Any]] = []
    for r in profile.rules:
        if not r.enabled and not include_disabled:
            continue
        params = profile.params(r.id)
        rows.append(
            {
                "id": r.id,
                "kind": r.kind,
                "enabled": r.enabled,
                "status": r.status_label,
                "status_codes": list(r.status),
                "secondary_source": r.secondary,
                "status_note": r.status_note,
                "requires": r.requires,
                "citation": r.citation,
                "enforced_by": r.enforced_by,
                "params": params.model_dump(mode="json")
                if hasattr(params, "model_dump")
                else dict(params),
            }
        )
    return rows


def rule_ids(profile: Profile | None = None) -> list[str]:
    """Stable rule ids the profile can report (enabled rules only)."""
    profile = profile if profile is not None else load_profile("cn")
    return [r.id for r in profile.rules if r.enabled]
