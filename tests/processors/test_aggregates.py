"""Report aggregates kept by the handlers equal those rebuilt from the rows, after a randomized stream.

Events are made here (core.events payloads, like tests/processors/factories.py): sends, corrected sends, receipts
with duplicates, conflicting finals, late (parked, then matched) and never-matched ones, clicks before and after
their send, STOP/START replies; applied in random batches through the real handlers, settles and sweeps, on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from core.events import DeliveryReceipt, Envelope, InboundMessage, LinkClick, SentMessage
from processors.db.aggregate_deltas import TABLES
from processors.db.models import SentAggregate
from processors.handlers.clicks import handle_click, settle_clicks, sweep_unattributed_clicks
from processors.handlers.opt_outs import handle_inbound_message
from processors.handlers.reconciliation import handle_receipt, settle_parked, sweep_parked
from processors.handlers.sent_messages import handle_sent_message, settle_sent_messages
from processors.reports.aggregates import from_rows, from_tables, rebuild

START = datetime(2026, 3, 1, tzinfo=UTC)
HANDLERS = {
    "sms.sent_message.v1": (handle_sent_message, settle_sent_messages),
    "sms.delivery_receipt.v1": (handle_receipt, settle_parked),
    "sms.inbound_message.v1": (handle_inbound_message, None),
    "sms.link_click.v1": (handle_click, settle_clicks),
}


def stream(rng: random.Random, messages: int = 80) -> list:
    """A shuffled stream of payloads over three days with every awkward case."""
    payloads: list = []
    for n in range(messages):
        vendor = rng.choice(("twilio", "sinch"))
        message_id = f"m{n}"
        sent_at = START + timedelta(seconds=rng.randrange(3 * 86400))
        send = dict(vendor=vendor, message_id=message_id, recipient=f"+4477009{n:05d}", sent_at=sent_at,
                    received_at=sent_at + timedelta(seconds=1), sender=rng.choice(("+447700900999", None)),
                    campaign_id=rng.choice(("spring", "summer", None)), country_iso2=rng.choice(("GB", "FR", None)),
                    parts=rng.choice((1, 1, 2)))
        payloads.append(SentMessage(**send))
        if rng.random() < 0.15:  # a corrected send: other campaign and day (moves the message's counts)
            payloads.append(SentMessage(**{**send, "campaign_id": "corrected",
                                           "sent_at": sent_at + timedelta(days=1)}))
        at = sent_at + timedelta(seconds=rng.expovariate(1 / 30))
        for status in rng.sample(("pending", "unknown", "delivered", "failed", "expired"), rng.randrange(0, 4)):
            at += timedelta(seconds=rng.expovariate(1 / 60))
            payloads.append(DeliveryReceipt(vendor=vendor, message_id=message_id, status=status,
                                            vendor_status=status.upper(), received_at=at, occurred_at=at))
            if rng.random() < 0.2:  # the same status again, a little later (one receipt per segment)
                again = at + timedelta(seconds=2)
                payloads.append(DeliveryReceipt(vendor=vendor, message_id=message_id, status=status,
                                                vendor_status=status.upper(), received_at=again, occurred_at=again))
        if rng.random() < 0.1:  # nobody sent this one: parked for good
            payloads.append(DeliveryReceipt(vendor=vendor, message_id=f"x{n}", status="delivered",
                                            vendor_status="DELIVERED", received_at=at, occurred_at=at))
        for k in range(rng.choice((0, 0, 1, 2))):
            clicked = at + timedelta(minutes=k + 1)
            payloads.append(LinkClick(vendor=vendor, message_id=message_id, recipient=send["recipient"],
                                      url=f"https://x.test/{n}/{k}", received_at=clicked, clicked_at=clicked))
        if rng.random() < 0.1:
            for k, text in enumerate(rng.sample(("STOP", "START", "STOP"), 2)):
                payloads.append(InboundMessage(vendor=vendor, message_id=f"in{n}-{k}", from_=send["recipient"],
                                               to="+447700900999", text=text, received_at=at + timedelta(hours=k)))
    rng.shuffle(payloads)  # receipts and clicks before their send, replies in any order
    return payloads


def apply(make_uow, payloads: list, rng: random.Random) -> None:
    """Random batches of one event type each, as the processors take them, each followed by its settle."""
    envelopes = [Envelope.wrap(payload) for payload in payloads]
    while envelopes:
        kind = envelopes[0].type
        batch = [e for e in envelopes[: rng.randrange(1, 12)] if e.type == kind]
        envelopes = [e for e in envelopes if e not in batch]
        handle, settle = HANDLERS[kind]
        with make_uow() as uow:
            for envelope in batch:
                handle(envelope, uow)
            uow.commit()
        if settle is not None:
            with make_uow() as uow:
                settle(batch, uow)
                uow.commit()
    with make_uow() as uow:
        sweep_parked(uow)
        sweep_unattributed_clicks(uow)
        uow.commit()


def stored(engine) -> dict:
    """Every non-zero stored aggregate row, per table."""
    with engine.connect() as connection:
        found = from_tables(connection, "0000-00-00", "9999-99-99")
    return {model.__tablename__: found.rows(model) for model in TABLES}


def computed(engine) -> dict:
    """The aggregates the rows add up to now."""
    with engine.connect() as connection:
        found = from_rows(connection)
    return {model.__tablename__: found.rows(model) for model in TABLES}


@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_aggregates_equal_rebuilt(engine, make_uow, seed):
    rng = random.Random(seed)
    apply(make_uow, stream(rng), rng)
    incremental = stored(engine)
    # the stream exercised what it should: conflicts, clicks, parked receipts, consent changes, corrected sends
    sent_rows = incremental[SentAggregate.__tablename__]
    assert sum(row["sent"] for row in sent_rows) == 80
    assert sum(row["conflicts"] for row in sent_rows) > 0 and sum(row["clicks"] for row in sent_rows) > 0
    assert any(row["campaign"] == "corrected" for row in sent_rows)
    assert incremental["report_parked_receipt_aggregates"] and incremental["report_consent_aggregates"]
    assert incremental == computed(engine)
    with engine.connect() as connection:
        rebuild(connection)
        connection.commit()
    assert stored(engine) == incremental


def test_rebuild_command_restores_lost_aggregates(engine, make_uow, migrated_url):
    from smshooks.cli import main

    rng = random.Random(3)
    apply(make_uow, stream(rng, messages=30), rng)
    expected = stored(engine)
    with engine.begin() as connection:
        for model in TABLES:
            connection.execute(model.__table__.delete())
    assert stored(engine) != expected
    result = CliRunner().invoke(main, ["report", "rebuild-aggregates"], env={"SMSHOOKS_DATABASE_URL": migrated_url})
    assert result.exit_code == 0, result.output
    assert "rebuilt report_sent_aggregates=" in result.output
    assert stored(engine) == expected


def test_upgrading_past_the_aggregates_migration_fills_them_from_the_rows(database_url):
    """A database with messages from before 0008 gets its aggregates at upgrade, not zeros until a rebuild."""
    from sqlalchemy import func, insert, select

    from processors.db import AGGREGATES_REVISION, upgrade
    from processors.db.engine import make_engine
    from processors.db.models import SentMessage as SentRow

    previous = f"{int(AGGREGATES_REVISION) - 1:04d}"
    upgrade(database_url, previous)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:  # what a running deployment stored before the upgrade
            connection.execute(insert(SentRow.__table__), [dict(
                vendor="twilio", message_id=f"sm{n}", raw_message_id=f"SM{n}", recipient="447700900123",
                sent_at=datetime(2026, 3, 1, 12, n, tzinfo=UTC), received_at=datetime(2026, 3, 1, 12, n, tzinfo=UTC),
                status="submitted", conflict=False, parts=1, version=1, source_event_id=f"e{n}") for n in range(3)])
        upgrade(database_url)
        with engine.connect() as connection:
            assert connection.scalar(select(func.sum(SentAggregate.sent))) == 3
        assert computed(engine) == stored(engine)
    finally:
        engine.dispose()
