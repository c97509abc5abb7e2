"""Logs never carry personal data: a filter masks identifiers in every record before it is written.

Borrowers type ID, phone and card numbers into the chat; an exception message, a validation
error or a library's debug line can quote them. The filter sits on the root handlers, so it
covers our loggers and the libraries' (uvicorn, SQLAlchemy, websockets) alike.
"""

from __future__ import annotations

import logging

from nlp.masking import mask_sensitive


class MaskingFilter(logging.Filter):
    """Rewrites the formatted message (and any exception text) with identifiers masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logged as-is, never dropped
            return True
        masked = mask_sensitive(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_sensitive(record.exc_text)
        return True


# Loggers whose handlers the server owns: the root (ours and the libraries') and uvicorn's.
SERVER_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


def install_masking_filter(names: tuple[str, ...] = SERVER_LOGGERS) -> None:
    """Put the filter on every handler of the named loggers; idempotent.

    The root logger gets a stderr handler when it has none, so our own records go through the
    filter instead of logging's unfiltered last-resort handler.
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        if root.level > logging.INFO:
            root.setLevel(logging.INFO)
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, MaskingFilter) for f in handler.filters):
                handler.addFilter(MaskingFilter())
