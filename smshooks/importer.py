"""Import sent messages from a CSV or JSON Lines file by publishing them as sms.sent_message.v1 events.

Rows are checked by the schema of `POST /v1/sent-messages` (receiver/sent.py: canonical), so a file row and an
HTTP item are accepted, normalized (message id, recipient digits, country) and refused alike. It lives on the
application floor because it joins the receiver's schema and a Kafka producer of its own.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from marshmallow import ValidationError
from tqdm import tqdm

from core.events import TOPIC_SENT_MESSAGES, Envelope, InvalidEvent, SentMessage, topic_name, utc_now
from core.kafka_clients import build
from core.settings import Settings
from core.topics import ensure_topics
from receiver.sent import canonical


@dataclass
class ImportSummary:
    """What an import did: data rows read, events Kafka acknowledged, each refused row with its reason."""

    path: str
    rows: int = 0
    published: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    rejects_path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the CLI."""
        return {
            "path": self.path,
            "rows": self.rows,
            "published": self.published,
            "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected],
            "rejects_file": self.rejects_path,
        }


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) for each data row; a row that cannot be parsed comes as its error text."""
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as error:
                    yield number, f"not JSON: {error}"
                    continue
                yield number, row if isinstance(row, dict) else "not a JSON object"
        return
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, {key: value for key, value in row.items() if key and value not in ("", None)}


def sent_message_from_row(row: dict[str, Any], received_at: datetime) -> SentMessage:
    """The row's SentMessage under the HTTP schema; raises InvalidEvent naming every bad field."""
    item = dict(row)
    if isinstance(item.get("parts"), str) and item["parts"].strip().isdigit():
        item["parts"] = int(item["parts"])  # CSV cells are text; HTTP's JSON carries a number
    if not item.get("sent_at"):
        # HTTP substitutes its receive time for a live send; a file lists past sends, whose time only it knows
        raise InvalidEvent("sent_at: required in a file (the import time is not when it was sent)")
    try:
        (message,) = canonical(item, received_at)
    except ValidationError as error:
        raise InvalidEvent(_reason(error.messages)) from None
    return message


def _reason(messages: Any) -> str:
    """marshmallow's messages as one line: `field: message; field: message`."""
    if isinstance(messages, dict):
        return "; ".join(f"{name}: {' '.join(map(str, text if isinstance(text, list) else [text]))}"
                         for name, text in messages.items())
    return str(messages)


def import_sent(path: str | Path, settings: Settings, progress: bool = True,
                rejects: str | Path | None = None) -> ImportSummary:
    """Publish every valid row of a CSV/JSONL file to sms.sent-messages so the normal pipeline stores it.

    Rows are keyed like any sent message (vendor:message id). Refused rows go to `rejects` (default
    `<file>.rejects.jsonl`, written only when a row is refused) as {"line", "reason", "row"}. Returns the
    summary once every published event is acknowledged (acks=all).
    """
    path = Path(path)
    summary = ImportSummary(path=str(path))
    topic = topic_name(settings.topic_prefix, TOPIC_SENT_MESSAGES)
    ensure_topics(settings, [TOPIC_SENT_MESSAGES])  # ensure_topics adds the prefix
    producer = build(
        KafkaProducer,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
    )
    refused: list[dict[str, Any]] = []
    futures = []
    received_at = utc_now()
    try:
        for line, row in tqdm(read_rows(path), desc=f"import {path.name}", unit=" rows", disable=not progress):
            summary.rows += 1
            try:
                if isinstance(row, str):
                    raise InvalidEvent(row)
                envelope = Envelope.wrap(sent_message_from_row(row, received_at))
            except InvalidEvent as error:
                summary.rejected.append((line, str(error)))
                refused.append({"line": line, "reason": str(error), "row": row if isinstance(row, dict) else None})
                continue
            futures.append(
                producer.send(topic, key=envelope.key.encode(), value=envelope.value(), headers=envelope.headers())
            )
        producer.flush()
        for future in futures:
            future.get(timeout=30)
            summary.published += 1
    finally:
        producer.close()
    if refused:
        target = Path(rejects) if rejects else path.with_name(path.name + ".rejects.jsonl")
        with target.open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(entry, ensure_ascii=False, default=str) + "\n" for entry in refused)
        summary.rejects_path = str(target)
    return summary
