"""The FastAPI application: routers, websockets, widget and console, on one set of services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from agent.api.guards import (
    ApiKeyFirst,
    BodySizeLimit,
    ConnectionLimiter,
    ControlCharacters,
    RateLimiter,
    SecurityHeaders,
)
from agent.api.routes import (
    calls,
    chat,
    compliance,
    contact_plan,
    conversations,
    health,
    loans,
    nlu,
    portfolio,
    reports,
    reviews,
)
from agent.api.ws import chat as chat_ws
from agent.api.ws import media as media_ws
from agent.bootstrap import Services
from agent.logs import install_masking_filter

WIDGET_DIR = Path(__file__).resolve().parent / "widget"
CONSOLE_DIR = Path(__file__).resolve().parent / "console"


log = logging.getLogger("huikuan.app")
SWEEP_INTERVAL_S = 60.0


async def _sweep_expired_chats(services: Services) -> None:
    """Close chat conversations whose token expired while no socket was open."""
    while True:
        try:
            await chat_ws.close_expired_chats(services)
        except Exception:  # noqa: BLE001 - a failed sweep must not stop the next one
            log.exception("closing expired chats failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)


PROMISE_SWEEP_INTERVAL_S = 3600.0


async def _sweep_promises(services: Services) -> None:
    """Judge promises whose grace ended (payments posted judge theirs at once)."""
    from agent.store.db import session_scope
    from agent.store.promises import resolve_promises

    def sweep() -> None:
        with session_scope(services.engine) as session:
            resolve_promises(session, services.clock(), services.settings.promise_grace_days)

    while True:
        try:
            await asyncio.to_thread(sweep)
        except Exception:  # noqa: BLE001 - a failed sweep must not stop the next one
            log.exception("resolving promises failed")
        await asyncio.sleep(PROMISE_SWEEP_INTERVAL_S)


def create_app(services: Services) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        install_masking_filter()  # uvicorn's handlers exist by now
        sweepers = [asyncio.create_task(_sweep_expired_chats(services)),
                    asyncio.create_task(_sweep_promises(services))]
        try:
            yield
        finally:
            for sweeper in sweepers:
                sweeper.cancel()
            for sweeper in sweepers:
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper

    app = FastAPI(title="Huikuan 回款", version="0.1.0", lifespan=lifespan)
    app.state.services = services
    settings = services.settings
    app.state.connections = ConnectionLimiter(settings.ws_connections_per_client)
    app.state.chat_rate = RateLimiter(settings.chat_message_rate, settings.chat_message_burst)
    app.state.session_rate = RateLimiter(settings.chat_session_rate,
                                         max(1, int(settings.chat_session_rate * 5)))
    app.state.chat_sockets = {}
    app.state.plan_slots = asyncio.Semaphore(settings.plan_concurrency)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    for module in (health, portfolio, loans, nlu, chat, conversations, compliance, contact_plan,
                   calls, chat_ws, media_ws, reviews, reports):
        app.include_router(module.router)
    app.mount("/widget", StaticFiles(directory=WIDGET_DIR, check_dir=False), name="widget")
    app.mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True, check_dir=False),
              name="console")
    # Outermost last: headers on every answer, then the key, then the body cap.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,
                       small_bytes=settings.max_small_body_bytes)
    app.add_middleware(ApiKeyFirst, key=lambda: services.api_key)
    app.add_middleware(ControlCharacters)
    app.add_middleware(SecurityHeaders, widget_frame_ancestors=settings.widget_frame_ancestors)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` worker processes (``huikuan serve --workers N``)."""
    import os

    from agent.bootstrap import build_services

    services = build_services()
    services.warm_up(voice=os.environ.get("HUIKUAN_SERVE_VOICE", "1") == "1")
    return create_app(services)
