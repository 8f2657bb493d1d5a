"""Opt-out lookup ("is this number opted out for this sender?") and the suppression-list export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select

from core.events import digits_msisdn
from processors.db.models import OptOutHistory, OptOutState
from processors.domain.consent import scope_key
from processors.reports.reconciliation import iso

SUPPRESSION_COLUMNS = ("msisdn", "scope", "sender", "opted_out_at", "keyword", "source_event_id")
HISTORY_COLUMNS = (
    "received_at", "occurred_at", "msisdn", "scope", "sender", "action", "changed", "source", "keyword", "text",
    "evidence", "vendor", "source_event_id",
)
HISTORY_LIMIT = 20


def opt_out_status(connection: Connection, msisdn: str, sender: str | None, scope: str) -> dict[str, Any]:
    """Consent of one subscriber for one sender (or account-wide): one unique-index lookup, plus recent history."""
    number = digits_msisdn(msisdn) or msisdn
    key = scope_key(scope, sender)
    state = connection.execute(
        select(OptOutState).where(OptOutState.msisdn == number, OptOutState.scope_key == key)
    ).first()
    history = connection.execute(
        select(OptOutHistory)
        .where(OptOutHistory.msisdn == number, OptOutHistory.scope_key == key)
        .order_by(OptOutHistory.received_at.desc(), OptOutHistory.id.desc())
        .limit(HISTORY_LIMIT)
    ).all()
    return {
        "msisdn": number,
        "scope": scope,
        "sender": None if key == "*" else key,
        "opted_out": bool(state and state.opted_out),
        "keyword": state.last_keyword if state else None,
        "changed_at": iso(state.updated_at) if state else None,
        "source_event_id": state.source_event_id if state else None,
        "history": [
            {"action": h.action, "keyword": h.keyword, "text": h.text, "changed": bool(h.changed),
             "source": h.source, "evidence": h.evidence,
             "vendor": h.vendor, "received_at": iso(h.received_at), "source_event_id": h.source_event_id}
            for h in history
        ],
    }


def suppression_statement(since: datetime | None) -> Select:
    """Opted-out consent rows in change order; written as ix_opt_out_state_opted_out_updated_at's filter."""
    statement = select(OptOutState).where(OptOutState.opted_out)
    if since is not None:
        statement = statement.where(OptOutState.updated_at >= since)
    return statement.order_by(OptOutState.updated_at, OptOutState.id)


def suppression_rows(connection: Connection, scope: str, since: datetime | None) -> Iterator[dict[str, Any]]:
    """Every subscriber currently opted out (optionally only those who opted out since a time), streamed."""
    statement = suppression_statement(since)
    for state in connection.execution_options(yield_per=5000).execute(statement):
        yield {
            "msisdn": state.msisdn,
            "scope": "account" if state.scope_key == "*" else scope,
            "sender": None if state.scope_key == "*" else state.scope_key,
            "opted_out_at": iso(state.updated_at),
            "keyword": state.last_keyword,
            "source_event_id": state.source_event_id,
        }


def suppression_csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    """CSV chunks: the header, then one line per opted-out subscriber."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUPPRESSION_COLUMNS)
    for row in rows:
        writer.writerow(["" if row[name] is None else row[name] for name in SUPPRESSION_COLUMNS])
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def suppression_json(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    """A JSON array, streamed one entry at a time."""
    yield "["
    for index, row in enumerate(rows):
        yield ("," if index else "") + json.dumps(row)
    yield "]\n"


def consent_history(connection: Connection, msisdn: str) -> list[dict[str, Any]]:
    """Every consent signal of one number, for every sender, oldest first: what changed, its source and evidence."""
    number = digits_msisdn(msisdn) or msisdn
    rows = connection.execute(
        select(OptOutHistory)
        .where(OptOutHistory.msisdn == number)
        .order_by(OptOutHistory.received_at, OptOutHistory.id)
    ).all()
    return [
        {
            "received_at": iso(h.received_at), "occurred_at": iso(h.occurred_at), "msisdn": h.msisdn,
            "scope": h.scope, "sender": None if h.scope_key == "*" else h.scope_key, "action": h.action,
            "changed": bool(h.changed), "source": h.source, "keyword": h.keyword, "text": h.text,
            "evidence": h.evidence, "vendor": h.vendor, "source_event_id": h.source_event_id,
        }
        for h in rows
    ]


def consent_history_csv(rows: list[dict[str, Any]]) -> str:
    """The consent history as CSV, one line per signal."""
    from processors.reports.compliance import rows_csv

    return rows_csv(HISTORY_COLUMNS, rows)
