"""Pick the recogniser from settings: Whisper out of the box, Vosk when asked for."""

from __future__ import annotations

import os
from pathlib import Path

from voice.asr.base import AsrError, SpeechRecognizer

ENGINES = ("whisper", "vosk")


def recognizer_from_settings(asr: str | None = None, model_path: str | None = None,
                             load: bool = True, data_dir: str | Path | None = None,
                             endpointing: str | None = None) -> SpeechRecognizer:
    """``asr``/``model_path`` default to ``HUIKUAN_ASR``/``HUIKUAN_ASR_MODEL``.

    Without a model path Whisper uses the packaged base model, assembled once under
    ``data_dir`` (default ``HUIKUAN_DATA_DIR`` or ``~/.cache/huikuan``) as
    ``models/whisper-base``.

    ``endpointing`` (``HUIKUAN_ENDPOINTING``) is Whisper's: ``learned`` (Silero VAD + Smart
    Turn, the default) or ``energy``. Vosk keeps its own streaming endpointer.

    Loads the model now (``load=True``) so that a missing or broken model stops the service
    at start-up with a clear ``AsrError`` instead of failing the first call.
    """
    engine = (asr or os.environ.get("HUIKUAN_ASR") or "whisper").strip().lower()
    path = model_path or os.environ.get("HUIKUAN_ASR_MODEL") or None
    recognizer: SpeechRecognizer
    if engine == "whisper":
        from voice.asr.whisper import WhisperRecognizer

        recognizer = WhisperRecognizer(
            path, data_dir=data_dir,
            endpointing=(endpointing or os.environ.get("HUIKUAN_ENDPOINTING") or "learned"
                         ).strip().lower())
    elif engine == "vosk":
        if not path:
            raise AsrError("HUIKUAN_ASR=vosk needs HUIKUAN_ASR_MODEL=<model directory>; get the "
                           "Mandarin model with `python scripts/fetch_models.py vosk`")
        from voice.asr.vosk import VoskRecognizer

        recognizer = VoskRecognizer(path)
    else:
        raise AsrError(f"unknown HUIKUAN_ASR={engine!r}; choose one of {', '.join(ENGINES)}")
    if load:
        recognizer.load()
    return recognizer
