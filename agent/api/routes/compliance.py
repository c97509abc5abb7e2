"""The same content check every agent utterance passes, exposed for scripts and QA."""

from __future__ import annotations

import io
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from agent.api.deps import ApiKey, ServicesDep
from agent.bootstrap import Services
from agent.policy.content import UtteranceContext, check_utterance
from agent.policy.profile import Profile, load_profile
from agent.policy.qa import QaContext, TranscriptTurn, score_transcript

router = APIRouter(prefix="/api/v1", tags=["compliance"], dependencies=[ApiKey])


class CheckContext(BaseModel):
    """Who is listening (contract v1.1); absent: the verified borrower, unless the text
    itself shows it speaks to someone else."""

    addressee: Literal["borrower", "third_party", "unknown"] = "borrower"
    identity_verified: bool = True
    channel: Literal["voice", "chat", "sms", "email"] = "chat"
    jurisdiction: Literal["cn", "us"] | None = None
    is_opening: bool = False


class CheckRequest(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)
    context: CheckContext | None = None
    # v1.0 fields, still accepted when no ``context`` is given.
    addressee: Literal["borrower", "third_party", "unknown"] = "borrower"
    identity_verified: bool = True
    is_opening: bool = False
    channel: Literal["voice", "chat", "sms", "email"] = "chat"


def _profile(services: Services, jurisdiction: str | None) -> Profile:
    if jurisdiction is None or jurisdiction == services.policy.jurisdiction:
        return services.policy
    return load_profile(jurisdiction)


@router.post("/compliance/check")
async def check(body: CheckRequest, services: ServicesDep) -> dict[str, Any]:
    c = body.context or CheckContext(addressee=body.addressee,
                                     identity_verified=body.identity_verified,
                                     channel=body.channel, is_opening=body.is_opening)
    ctx = UtteranceContext(identity_verified=c.identity_verified, addressee=c.addressee,
                           is_opening=c.is_opening, channel=c.channel)
    profile = _profile(services, c.jurisdiction)
    verdict = await run_in_threadpool(check_utterance, body.text, profile, ctx,
                                      services.compliance_classifier)
    return verdict.to_dict()


@router.get("/compliance/rules")
def rules(services: ServicesDep) -> list[dict[str, Any]]:
    """The active profile's rules with citations and status, for compliance officers."""
    profile = services.policy
    return [{"id": r.id, "kind": r.kind, "status": r.status_label, "citation": r.citation,
             "enabled": profile.enabled(r.id)} for r in profile.rules]


class QaTurn(BaseModel):
    speaker: Literal["agent", "borrower"]
    text: str = Field(max_length=10_000)


class QaTranscriptContext(CheckContext):
    channel: Literal["voice", "chat", "sms", "email"] = "voice"
    agent: Literal["ai", "human"] = "ai"


class QaRequest(BaseModel):
    turns: list[QaTurn] = Field(min_length=1, max_length=2_000)
    context: QaTranscriptContext | None = None


@router.post("/qa/transcripts")
async def qa_transcript(body: QaRequest, services: ServicesDep) -> dict[str, Any]:
    """A scorecard for any conversation: violations by turn, disclosures, a 0–100 score."""
    c = body.context or QaTranscriptContext()
    context = QaContext(addressee=c.addressee, identity_verified=c.identity_verified,
                        channel=c.channel, agent_is_ai=c.agent == "ai")
    turns = [TranscriptTurn(t.speaker, t.text) for t in body.turns]
    card = await run_in_threadpool(score_transcript, turns, _profile(services, c.jurisdiction),
                                   context, services.compliance_classifier)
    return card.to_dict()


AUDIO_TYPES = ("audio/", "application/octet-stream")


@router.post("/qa/recordings")
async def qa_recording(
    request: Request, services: ServicesDep,
    agent_channel: Literal["left", "right"] = Query(
        "left", description="the collector's channel in a stereo recording"),
    agent: Literal["ai", "human"] = Query("human"),
    jurisdiction: Literal["cn", "us"] | None = Query(None),
) -> dict[str, Any]:
    """A call recording (WAV, MP3…, the raw file as the body): each channel recognised with
    the product's speech engine, then the same scorecard as ``/qa/transcripts`` plus the
    time-stamped, masked lines."""
    from agent.qa_runner import QaInputError, QaSetup, score_recording

    kind = request.headers.get("content-type", "")
    if not kind.startswith(AUDIO_TYPES):
        raise HTTPException(415, f"send the recording as the body with an audio/* content type, "
                                 f"not {kind or 'none'}")
    body = await request.body()
    if not body:
        raise HTTPException(422, "empty body: send the recording file")
    setup = QaSetup(_profile(services, jurisdiction),
                    QaContext(channel="voice", agent_is_ai=agent == "ai"),
                    services.compliance_classifier, agent_channel)  # type: ignore[arg-type]
    try:
        recognizer = await run_in_threadpool(lambda: services.recognizer)
        return await run_in_threadpool(score_recording, io.BytesIO(body), recognizer, setup)
    except QaInputError as exc:
        raise HTTPException(422, str(exc)) from exc
