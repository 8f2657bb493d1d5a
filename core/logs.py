"""JSON log lines with phone numbers masked and credentials blanked, for the receiver and the processors alike."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

# A phone number: 8 to 15 digits, optionally after + and spaced, not inside a word, id or decimal number.
PHONE = re.compile(r"(?<![\w.-])\+?\d(?: ?\d){7,14}(?!\w)")
SECRET = re.compile(
    r"(?i)\b(token|sig|signature|secret|password|api_key|apikey)=([^&\s\"']+)|\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"
)

# A URL token: whatever follows /v1/callbacks/<vendor>/<kind>/ in a request line, a path or a traceback.
CALLBACK_TOKEN = re.compile(r"(/v1/callbacks/[^/\s?#\"']+/[^/\s?#\"']+/)[^\s?#\"']+")


def _mask_number(match: re.Match[str]) -> str:
    """Every digit but the last 3 starred: enough to tell numbers apart in support, useless to a leak."""
    number = match.group(0)
    keep = len(number) - 3
    return re.sub(r"\d", "*", number[:keep]) + number[keep:]


def mask(text: str) -> str:
    """Phone numbers down to their last 3 digits and credentials (query and URL tokens) blanked, for anything we
    log."""
    text = PHONE.sub(_mask_number, text)
    if "/v1/callbacks/" in text:
        text = CALLBACK_TOKEN.sub(r"\1<redacted>", text)
    return SECRET.sub(lambda m: f"{m.group(1)}=<redacted>" if m.group(1) else f"{m.group(3)} <redacted>", text)


class MaskingFilter(logging.Filter):
    """Masks the rendered message and string extras of every record passing the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = None
        for key, value in list(record.__dict__.items()):
            if isinstance(value, str) and key not in {"msg", "name", "levelname", "pathname", "filename"}:
                record.__dict__[key] = mask(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        return True


class MaskingJsonFormatter(JsonFormatter):
    """python-json-logger's formatter with tracebacks and stacks masked: it renders `exc_info` itself (ignoring the
    filter's masked `exc_text`), and an exception's message or a frame's line can hold a number or a token."""

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return mask(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return mask(super().formatStack(stack_info))


def json_formatter() -> logging.Formatter:
    """One JSON object per line: time, level, logger name, message and the record's extras."""
    return MaskingJsonFormatter("{asctime}{levelname}{name}{message}", style="{", rename_fields={"levelname": "level"})


def json_handler(stream: Any = None) -> logging.Handler:
    """A stream handler writing one masked JSON object per line."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(json_formatter())
    handler.addFilter(MaskingFilter())
    handler.smshooks_json = True  # type: ignore[attr-defined]
    return handler


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Root logs as masked JSON lines; idempotent, and leaves other handlers (pytest's, gunicorn's) alone."""
    root = logging.getLogger()
    if not any(getattr(h, "smshooks_json", False) for h in root.handlers):
        root.addHandler(json_handler(stream))
    root.setLevel(level.upper())
    # kafka-python logs every connection and group step at INFO (~25 lines before `make run`'s banner)
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
