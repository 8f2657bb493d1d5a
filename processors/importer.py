"""Import sent messages from a CSV or JSON Lines file by publishing them as sms.sent_message.v1 events."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from tqdm import tqdm

from processors.topics import ensure_topics
from receiver.contract import TOPIC_SENT_MESSAGES, Envelope, InvalidEvent, SentMessage, topic_name, utc_now
from smshooks.kafka_clients import build
from smshooks.settings import Settings

FIELDS = {item.name for item in fields(SentMessage)} - {"raw"}


@dataclass
class ImportSummary:
    """What an import did: rows read, events published, and each rejected row with its reason."""

    path: str
    rows: int = 0
    published: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the CLI."""
        return {
            "path": self.path,
            "rows": self.rows,
            "published": self.published,
            "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected],
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


def sent_message_from_row(row: dict[str, Any]) -> SentMessage:
    """A validated SentMessage from one row (columns = SentMessage fields); raises InvalidEvent."""
    unknown = set(row) - FIELDS
    if unknown:
        raise InvalidEvent(f"unknown columns {sorted(unknown)}")
    data = dict(row)
    data.setdefault("received_at", utc_now().isoformat())
    for name in ("sent_at", "received_at"):
        data[name] = _utc_text(name, data.get(name))
    if "parts" in data:
        try:
            data["parts"] = int(data["parts"])
        except (TypeError, ValueError):
            raise InvalidEvent(f"parts: not an integer: {data['parts']!r}") from None
    for name in ("vendor", "message_id", "recipient"):
        if not str(data.get(name) or "").strip():
            raise InvalidEvent(f"missing field {name!r}")
    data["raw"] = dict(row)
    payload = SentMessage.from_data(data)
    assert isinstance(payload, SentMessage)
    return payload


def _utc_text(name: str, value: Any) -> str | None:
    """ISO text with a zone; a naive time is rejected rather than guessed."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"{name}: not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise InvalidEvent(f"{name}: time without a timezone: {value!r}")
    return parsed.astimezone(UTC).isoformat()


def import_sent(path: str | Path, settings: Settings, progress: bool = True) -> ImportSummary:
    """Publish every valid row of a CSV/JSONL file to sms.sent-messages so the normal pipeline stores it.

    Rows are keyed like any sent message (vendor:message id); bad rows are skipped and listed with
    their line numbers. Returns the summary once every published event is acknowledged (acks=all).
    """
    path = Path(path)
    summary = ImportSummary(path=str(path))
    topic = topic_name(settings.topic_prefix, TOPIC_SENT_MESSAGES)
    ensure_topics(settings, [topic])
    producer = build(
        KafkaProducer,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
    )
    futures = []
    try:
        for line, row in tqdm(read_rows(path), desc=f"import {path.name}", unit=" rows", disable=not progress):
            summary.rows += 1
            if isinstance(row, str):
                summary.rejected.append((line, row))
                continue
            try:
                envelope = Envelope.wrap(sent_message_from_row(row))
            except InvalidEvent as error:
                summary.rejected.append((line, str(error)))
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
    return summary
