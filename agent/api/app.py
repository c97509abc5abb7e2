"""The FastAPI application: routers, websockets, widget and console, on one set of services."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from agent.api.limits import BodySizeLimit
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
    reviews,
)
from agent.api.ws import chat as chat_ws
from agent.api.ws import media as media_ws
from agent.bootstrap import Services

WIDGET_DIR = Path(__file__).resolve().parent / "widget"
CONSOLE_DIR = Path(__file__).resolve().parent / "console"


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="Huikuan 回款", version="0.1.0")
    app.state.services = services

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    for module in (health, portfolio, loans, nlu, chat, conversations, compliance, contact_plan,
                   calls, chat_ws, media_ws, reviews):
        app.include_router(module.router)
    app.mount("/widget", StaticFiles(directory=WIDGET_DIR, check_dir=False), name="widget")
    app.mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True, check_dir=False),
              name="console")
    app.add_middleware(BodySizeLimit, max_bytes=services.settings.max_body_bytes)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` worker processes (``huikuan serve --workers N``)."""
    import os

    from agent.bootstrap import build_services

    services = build_services()
    services.warm_up(voice=os.environ.get("HUIKUAN_SERVE_VOICE", "1") == "1")
    return create_app(services)
