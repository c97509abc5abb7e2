"""The ``huikuan`` command: serve, import, demo, strategies, call, dial, qa."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(help="Huikuan 回款: compliant collections and service agent.", no_args_is_help=True)
console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def _services(**overrides: object):  # type: ignore[no-untyped-def]
    from agent.bootstrap import build_services

    return build_services(**overrides)


def _seed_demo(services, borrowers: int) -> None:  # type: ignore[no-untyped-def]
    from agent.demo import generate
    from agent.importer import import_document

    doc = generate(borrowers=borrowers)
    with _progress() as progress:
        task = progress.add_task("seeding demo portfolio", total=1)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        counts = import_document(services.engine, doc, progress=update)
    console.print(f"[green]demo data:[/] {counts.as_dict()}")


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          demo: bool = typer.Option(False, help="Seed demo data first if the database is empty."),
          voice: bool = typer.Option(True, help="Load speech models at start-up."),
          workers: int = typer.Option(1, min=1, max=64, help="worker processes")) -> None:
    """Start the API, chat, media stream and console on one port."""
    import uvicorn
    from sqlalchemy import func, select

    from agent.api.app import create_app
    from agent.store.tables import Loan

    services = _services()
    if demo:
        with services.engine.connect() as conn:
            if conn.execute(select(func.count()).select_from(Loan)).scalar_one() == 0:
                _seed_demo(services, 3000)
    if services.api_key_generated:
        console.print(f"[bold yellow]Generated API key[/] (stored in {services.settings.data_dir}"
                      f"/api_key, shown once):\n{services.api_key}")
    console.print(f"database: {services.engine.url.render_as_string(hide_password=True)}")
    from agent.retention import purge_recordings

    settings = services.settings
    purged = purge_recordings(services.engine, settings.data_dir,
                              settings.recordings_retention_days, services.clock())
    if purged:
        console.print(f"recordings past {settings.recordings_retention_days} days deleted: {purged}")
    try:
        services.warm_up(voice=voice)
    except Exception as exc:  # noqa: BLE001 - start-up must fail with a readable message
        console.print(f"[red]start-up failed:[/] {exc}")
        raise typer.Exit(2) from exc
    if workers > 1:
        # Each worker builds its own services; the schema, keys and demo data exist already,
        # and contact caps are counted in the database, so they hold across the workers.
        import os

        os.environ["HUIKUAN_SERVE_VOICE"] = "1" if voice else "0"
        os.environ.setdefault("HUIKUAN_DATA_DIR", str(services.settings.data_dir))
        services.engine.dispose()
        uvicorn.run("agent.api.app:app_from_environment", factory=True, host=host, port=port,
                    workers=workers, log_level="info", ws_per_message_deflate=False,
                    ws_max_size=settings.max_ws_frame_bytes)
        return
    # No per-message deflate: base64 call audio barely compresses and deflating it 50 times a
    # second per call showed up in the phone path's profile.
    uvicorn.run(create_app(services), host=host, port=port, log_level="info",
                ws_per_message_deflate=False, ws_max_size=settings.max_ws_frame_bytes)


@app.command("import")
def import_(paths: list[Path] = typer.Argument(..., help="portfolio .json files or CSV-set folders")) -> None:
    """Import loan records; each file (or CSV set) is all-or-nothing."""
    from agent.importer import ImportFailed, import_path

    services = _services()
    failed = False
    for path in paths:
        with _progress() as progress:
            task = progress.add_task(f"importing {path.name}", total=None)

            def update(done: int, total: int, task: int = task) -> None:
                progress.update(task, completed=done, total=total)

            try:
                counts = import_path(services.engine, path, update)
            except ImportFailed as exc:
                console.print(f"[red]{path}: nothing imported:[/] {exc}")
                failed = True
                continue
        console.print(f"[green]{path}:[/] {counts.as_dict()}")
    _resolve_promises(services)
    if failed:
        raise typer.Exit(1)


def _resolve_promises(services, at: object = None) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from agent.store.db import session_scope
    from agent.store.promises import resolve_promises

    with session_scope(services.engine) as session:
        return resolve_promises(session, at or services.clock(),
                                services.settings.promise_grace_days)


promises_app = typer.Typer(help="Promises to pay.")
app.add_typer(promises_app, name="promises")


@promises_app.command("resolve")
def promises_resolve(at: str = typer.Option(None, "--at", help="ISO time (default: now)")) -> None:
    """Judge pending promises against posted payments (kept / partially_kept / broken).

    Idempotent: ``huikuan serve`` also does it hourly and whenever payments are posted."""
    from datetime import datetime

    moment = None
    if at:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            console.print(f"[red]--at {at!r} is not an ISO time[/] (e.g. 2026-12-01T00:00+08:00)")
            raise typer.Exit(2) from None
        if moment.tzinfo is None:
            console.print("[red]--at needs a UTC offset[/] (e.g. 2026-12-01T00:00+08:00)")
            raise typer.Exit(2)
    counts = _resolve_promises(_services(), moment)
    console.print(f"[green]promises resolved:[/] {counts or 'none due'}")


@app.command()
def demo(borrowers: int = typer.Option(3000, min=1, max=200_000)) -> None:
    """Seed a synthetic portfolio (Chinese names, current … M6+, partial payments)."""
    _seed_demo(_services(), borrowers)


strategies_app = typer.Typer(help="Collection strategies (strategies/*.yaml).")
app.add_typer(strategies_app, name="strategies")


@strategies_app.command("check")
def strategies_check(directory: Path = typer.Argument(None, help="default: the configured dir")) -> None:
    """Validate every strategy file and the routing; exit 1 with clear errors if any is broken."""
    from agent.config.settings import Settings
    from agent.strategy import StrategyBook, check_directory

    directory = directory or Settings().strategies_dir
    problems = check_directory(directory)
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    if problems:
        raise typer.Exit(1)
    book = StrategyBook(directory)
    for ref, strategy in sorted(book.strategies.items()):
        role = "champion" if ref == book.champion else (
            f"challenger ({book.challenger_share:.0%})" if ref == book.challenger else "idle")
        segments = ", ".join(s.id for s in strategy.segments)
        console.print(f"[green]✓[/] {ref} ({role}) segments: {segments}")


@app.command()
def call(loan: str = typer.Option(..., "--loan", help="loan id, e.g. L001"),
         audio: list[Path] = typer.Option(..., "--audio", exists=True, dir_okay=False,
                                          help="WAV(s) the borrower says, in order"),
         url: str = typer.Option("ws://127.0.0.1:8000/ws/media", help="the server's /ws/media"),
         out: Path = typer.Option(Path("agent-said.wav"), help="where to save the agent's audio"),
         fast: bool = typer.Option(False, help="send audio as fast as possible (not real time)"),
         api_key: str = typer.Option("", envvar="HUIKUAN_API_KEY",
                                     help="the server's API key (default: the data dir's)"),
         ) -> None:
    """Local softphone: stream WAVs into /ws/media as a phone would and save what the agent said.

    It first asks the server for a single-use media token for the loan (the stream is refused
    without one), as an integration placing its own call would."""
    import asyncio
    import json

    import httpx

    from voice.softphone import run_softphone

    key = api_key or _services().api_key
    base = url.replace("ws", "http", 1).rsplit("/ws/", 1)[0]
    try:
        response = httpx.post(base + "/api/v1/media-tokens", json={"loan_id": loan},
                              headers={"Authorization": f"Bearer {key}"}, timeout=30)
        if response.status_code != 200:
            console.print(f"[red]no media token for {loan}:[/] {response.status_code} "
                          f"{response.text[:300]}")
            raise typer.Exit(2)
        token = response.json()["token"]
        summary = asyncio.run(run_softphone(url, loan, audio, out_wav=out, realtime=not fast,
                                            extra_params={"token": token}))
    except (OSError, httpx.HTTPError) as exc:
        console.print(f"[red]cannot reach {url}:[/] {exc} (is `huikuan serve` running?)")
        raise typer.Exit(2) from exc
    console.print_json(json.dumps(summary, ensure_ascii=False, default=str))
    console.print(f"agent audio saved to {out}")


@app.command()
def dial(concurrency: int = typer.Option(5, min=1, max=100),
         limit: int = typer.Option(0, min=0, help="at most this many calls (0: all allowed)")) -> None:
    """Call every loan the voice contact plan allows now, through the telephony provider."""
    import asyncio
    from collections import Counter

    from sqlmodel import Session

    from agent.calls import CallRefused, TelephonyUnavailable, place_call
    from agent.contacts import contact_plan

    services = _services()
    if services.telephony() is None:
        console.print("[red]no telephony provider configured:[/] set HUIKUAN_TELEPHONY=twilio "
                      "and the HUIKUAN_TWILIO_* settings")
        raise typer.Exit(2)
    with Session(services.engine) as session:
        rows = [r for r in contact_plan(session, services.strategies, services.policy,
                                        services.clock(), "voice") if r["allowed"]]
    rows = rows[:limit] if limit else rows
    results: Counter[str] = Counter()

    async def run_all() -> None:
        gate = asyncio.Semaphore(concurrency)
        with _progress() as progress:
            task = progress.add_task("dialling", total=len(rows))

            async def one(row: dict[str, object]) -> None:
                async with gate:
                    try:
                        await place_call(services, str(row["loan_id"]))
                        results["placed"] += 1
                    except CallRefused as exc:
                        results[f"refused:{exc.reason}"] += 1
                    except TelephonyUnavailable:
                        results["failed"] += 1
                    progress.advance(task)

            await asyncio.gather(*(one(r) for r in rows))

    asyncio.run(run_all())
    console.print(f"{len(rows)} allowed rows: {dict(results)}")


@app.command()
def qa(files: list[Path] = typer.Argument(..., exists=True, dir_okay=False,
                                         help="call recordings (WAV, MP3…) or JSON transcripts"),
       out: Path = typer.Option(None, "--out", help="report file: .json or .csv (default: JSON "
                                "on stdout)"),
       agent: str = typer.Option("human", help="who collected: human | ai (AI disclosure needed)"),
       agent_channel: str = typer.Option("left", help="the collector's channel in stereo "
                                         "recordings: left | right"),
       jurisdiction: str = typer.Option(None, help="compliance profile: cn | us (default: "
                                        "the configured one)"),
       channel: str = typer.Option("voice", help="voice | chat | sms (recordings are voice)"),
       ) -> None:
    """Quality-check conversations held elsewhere (质检): every collector line through the
    compliance gate, required disclosures, a 0–100 score; worst first. Exit 1 if any file
    could not be read (the others are still scored)."""
    import csv
    import json

    from agent.config.settings import Settings
    from agent.policy.profile import load_profile
    from agent.policy.qa import QaContext
    from agent.qa_runner import AUDIO_SUFFIXES, QaInputError, QaSetup, score_file

    if agent not in ("human", "ai") or agent_channel not in ("left", "right") or \
            channel not in ("voice", "chat", "sms"):
        console.print("[red]--agent is human|ai, --agent-channel left|right, "
                      "--channel voice|chat|sms[/]")
        raise typer.Exit(2)
    if out is not None and out.suffix.lower() not in (".json", ".csv"):
        console.print(f"[red]--out must end in .json or .csv, not {out.name}[/]")
        raise typer.Exit(2)
    settings = Settings()
    profile = load_profile(jurisdiction or settings.jurisdiction)
    classifier = None
    if settings.compliance_classifier:
        from nlp.compliance import shared_classifier

        classifier = shared_classifier()
    recognizer = None
    if any(f.suffix.lower() in AUDIO_SUFFIXES for f in files):
        from voice.asr.factory import recognizer_from_settings

        recognizer = recognizer_from_settings(settings.asr, settings.asr_model,
                                              data_dir=settings.data_dir,
                                              endpointing=settings.endpointing)
    setup = QaSetup(profile, QaContext(channel=channel, agent_is_ai=agent == "ai"),
                    classifier, agent_channel)  # type: ignore[arg-type]
    reports: list[dict[str, object]] = []
    with _progress() as progress:
        task = progress.add_task("quality check", total=len(files))
        for path in files:
            try:
                reports.append({"file": str(path), **score_file(path, setup, recognizer)})
            except QaInputError as exc:
                reports.append({"file": str(path), "error": str(exc)})
            progress.advance(task)
    reports.sort(key=lambda r: (r.get("score", -1), r["file"]))  # type: ignore[arg-type, return-value]
    for r in reports:
        if "error" in r:
            console.print(f"[red]✗[/] {r['file']}: {r['error']}")
        else:
            rules = ", ".join(f"{k}×{v}" for k, v in r["violations_by_rule"].items()) or "none"  # type: ignore[attr-defined]
            console.print(f"{r['score']:>3}  {r['file']}  violations: {rules}")
    if out is None:
        print(json.dumps(reports, ensure_ascii=False, indent=1))
    elif out.suffix.lower() == ".json":
        out.write_text(json.dumps(reports, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "score", "violations", "rules", "missing_disclosures",
                             "error"])
            for r in reports:
                writer.writerow([r["file"], r.get("score", ""), len(r.get("violations", [])),  # type: ignore[arg-type]
                                 " ".join(r.get("flags", [])),  # type: ignore[arg-type]
                                 " ".join(r.get("missing_disclosures", [])),  # type: ignore[arg-type]
                                 r.get("error", "")])
    if any("error" in r for r in reports):
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
