"""End to end through a real broker: publish CloudEvents, run the processors, check the DB and output topics."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from core.events import (
    TOPIC_DELIVERY_RECEIPTS,
    TOPIC_MESSAGE_STATUS,
    TOPIC_OPT_OUTS,
    DeliveryReceipt,
    Envelope,
    topic_name,
)
from processors.db.models import Click, OptOutState, OutboxRecord, ProcessedEvent, Receipt, SentMessage
from processors.runtime import SETTLE_ATTEMPTS, Processor
from tests.conftest import consume_all
from tests.processors.factories import (
    click,
    create_all_topics,
    inbound,
    publish,
    publish_raw,
    receipt,
    running,
    running_processor,
    sent,
    settings_for,
    wait_for,
)


def scalar(session, statement):
    session.rollback()
    return session.scalar(statement)


def status_of(session, vendor, message_id):
    return scalar(session, select(SentMessage.status).filter_by(vendor=vendor, message_id=message_id))


def headers_of(record) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def test_receipts_sent_messages_and_clicks_end_to_end(broker, topic_prefix, migrated_url, session):
    settings = settings_for(broker.bootstrap_servers, topic_prefix, migrated_url)
    create_all_topics(settings)
    # Receipts first: they must park, then match when the sent messages arrive.
    bundle = [receipt("fortytwo", f"00{n}", "delivered", 30 + n) for n in (101, 102, 103)]  # one bundle, fanned out
    early = [
        receipt("twilio", "SMa", "pending", 5),
        receipt("twilio", "SMa", "delivered", 6),
        receipt("twilio", "SMb", "delivered", 7),
        receipt("twilio", "SMb", "failed", 8),  # conflicting final
        receipt("twilio", "SMnobody", "failed", 9),  # never sent: stays parked
    ]
    receipt_envelopes = publish(settings, early + bundle)
    publish(settings, [receipt("twilio", "SMa", "delivered", 6)])  # vendor retry: same event id
    with running(settings):
        wait_for(lambda: scalar(session, select(func.count()).select_from(Receipt)) == 8)
        publish(
            settings,
            [sent("twilio", "SMA"), sent("twilio", "SMb"), *[sent("fortytwo", str(n)) for n in (101, 102, 103)]],
        )
        publish(settings, [click("twilio", "sma"), click("twilio", "SMunknown", n=1)])
        wait_for(lambda: status_of(session, "twilio", "sma") == "delivered")
        wait_for(lambda: all(status_of(session, "fortytwo", str(n)) == "delivered" for n in (101, 102, 103)))
        wait_for(lambda: scalar(session, select(func.count()).select_from(Click)) == 2)
        # the click may be consumed while its sent message is being committed: a settle attributes it
        wait_for(lambda: scalar(session, select(func.count()).where(Click.sent_message_id.is_not(None))) == 1)
        wait_for(lambda: scalar(session, select(func.count()).where(OutboxRecord.sent_at.is_(None))) == 0)
    session.rollback()
    conflicted = session.scalars(select(SentMessage).filter_by(vendor="twilio", message_id="smb")).one()
    assert (conflicted.status, conflicted.conflict) == ("delivered", True)
    parked = session.scalars(select(Receipt).where(Receipt.parked)).all()
    assert [r.raw_message_id for r in parked] == ["SMnobody"]
    assert session.scalar(select(func.count()).select_from(Receipt)) == 8  # the retry was deduped
    assert {r.event_id for r in session.scalars(select(Receipt))} == {e.id for e in receipt_envelopes}
    clicks = {c.message_id: c for c in session.scalars(select(Click))}
    assert clicks["sma"].sent_message_id is not None and clicks["smunknown"].sent_message_id is None

    # sma: pending, delivered; smb: delivered, conflict; three fortytwo delivered
    records = consume_all(broker.bootstrap_servers, topic_name(topic_prefix, TOPIC_MESSAGE_STATUS), 7)
    events = [Envelope.decode(r.topic, r.key, r.headers, r.value) for r in records]
    assert len({e.id for e in events}) == 7
    by_message = {}
    for event in events:
        by_message.setdefault(event.payload.message_id, []).append((event.payload.status, event.payload.conflict))
    assert sorted(by_message["sma"]) == [("delivered", False), ("pending", False)]
    assert sorted(by_message["smb"]) == [("delivered", False), ("delivered", True)]
    assert by_message["101"] == [("delivered", False)]
    assert all(r.key.decode().startswith(("twilio:", "fortytwo:")) for r in records)


def test_opt_outs_end_to_end(broker, topic_prefix, migrated_url, session):
    settings = settings_for(broker.bootstrap_servers, topic_prefix, migrated_url, opt_out_scope="account")
    create_all_topics(settings)
    publish(settings, [inbound("STOP", n=1), inbound("start", n=2), inbound(" Stop All! ", n=3), inbound("hi", n=4)])
    with running(settings, ["opt-outs"]):
        wait_for(lambda: scalar(session, select(func.count()).select_from(ProcessedEvent)) == 4)
        wait_for(lambda: scalar(session, select(func.count()).where(OutboxRecord.sent_at.is_(None))) == 0)
    session.rollback()
    (state,) = session.scalars(select(OptOutState)).all()
    assert (state.opted_out, state.scope_key, state.last_keyword) == (True, "*", "stop all")
    records = consume_all(broker.bootstrap_servers, topic_name(topic_prefix, TOPIC_OPT_OUTS), 3)
    actions = [json.loads(r.value)["action"] for r in records]
    assert actions == ["opt_out", "opt_in", "opt_out"]  # one key (the subscriber), so in order
    assert {headers_of(r)["ce_type"] for r in records} == {"sms.opt_out.v1"}


def test_poison_record_goes_to_dlq_and_processing_continues(broker, topic_prefix, migrated_url, session):
    settings = settings_for(broker.bootstrap_servers, topic_prefix, migrated_url)
    create_all_topics(settings)
    publish_raw(
        settings,
        TOPIC_DELIVERY_RECEIPTS,
        b"twilio:x",
        b"{not json",
        [("ce_id", b"x"), ("ce_type", b"sms.delivery_receipt.v1"), ("ce_source", b"t")],
    )
    publish_raw(settings, TOPIC_DELIVERY_RECEIPTS, b"twilio:y", b"{}", [])
    bad_status = Envelope.wrap(receipt("twilio", "SMz", "delivered", 1))
    value = json.loads(bad_status.value())
    value["status"] = "teleported"
    publish_raw(settings, TOPIC_DELIVERY_RECEIPTS, b"twilio:z", json.dumps(value).encode(), bad_status.headers())
    good = publish(settings, [receipt("twilio", "SMgood", "delivered", 2)])
    with running(settings, ["reconciliation"]):
        wait_for(lambda: scalar(session, select(Receipt.event_id)) == good[0].id)
    dlq = consume_all(broker.bootstrap_servers, topic_name(topic_prefix, TOPIC_DELIVERY_RECEIPTS) + ".dlq", 3)
    assert sorted(r.value for r in dlq) == sorted([b"{not json", b"{}", json.dumps(value).encode()])
    reasons = sorted(headers_of(r)["dlq_reason"] for r in dlq)
    assert any("value is not JSON" in reason for reason in reasons)
    assert any("missing header ce_id" in reason for reason in reasons)
    assert any("teleported" in reason for reason in reasons)
    for record in dlq:
        headers = headers_of(record)
        assert headers["dlq_original_topic"] == topic_name(topic_prefix, TOPIC_DELIVERY_RECEIPTS)
        assert int(headers["dlq_original_offset"]) >= 0
        assert headers["dlq_consumer_group"] == f"{topic_prefix}smshooks-reconciliation"


def test_transient_failure_retries_without_loss_or_duplicates(broker, topic_prefix, migrated_url, session):
    settings = settings_for(broker.bootstrap_servers, topic_prefix, migrated_url, consumer_max_poll_records=5)
    create_all_topics(settings)
    calls: list[str] = []
    failures = {"left": 3}

    def flaky(envelope, uow):
        """Stores the receipt like reconciliation would, but the database 'goes away' three times."""
        calls.append(envelope.id)
        if len(calls) % 4 == 2 and failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        uow.session.add(ProcessedMarker(envelope))

    envelopes = publish(settings, [receipt("twilio", f"SM{n}", "delivered", n) for n in range(20)])
    processor = Processor("flaky", (TOPIC_DELIVERY_RECEIPTS,), {DeliveryReceipt.ce_type: flaky})
    with running_processor(processor, settings) as result:
        wait_for(lambda: scalar(session, select(func.count()).select_from(ProcessedEvent)) == 20, timeout=60)
    stats = result["stats"]
    assert failures["left"] == 0 and stats.retries >= 3
    assert stats.handled == 20
    session.rollback()
    stored = session.scalars(select(Receipt.event_id)).all()
    assert sorted(stored) == sorted(e.id for e in envelopes)  # each exactly once (event_id is unique)


def ProcessedMarker(envelope):  # noqa: N802 - reads like the row it builds
    """A minimal receipts row for the flaky processor test."""
    return Receipt(
        event_id=envelope.id,
        vendor="twilio",
        message_id=envelope.payload.message_id,
        raw_message_id=envelope.payload.message_id,
        status="delivered",
        vendor_status="DELIVERED",
        received_at=envelope.payload.received_at,
        raw={},
        parked=True,
        outcome="parked",
    )


def test_settle_runs_after_each_commit_and_stale_rows_are_retried(broker, topic_prefix, migrated_url, session):
    """The loop calls the processor's settle with the events it just committed; a StaleDataError is retried,
    in a batch and in a settle."""
    from sqlalchemy.orm.exc import StaleDataError

    settings = settings_for(broker.bootstrap_servers, topic_prefix, migrated_url, consumer_max_poll_records=5)
    create_all_topics(settings)
    stale = {"left": 2, "settles": 1}
    settled: list[str] = []
    committed_when_settled: list[bool] = []

    def handler(envelope, uow):
        if stale["left"] and envelope.payload.message_id == "SM7":
            stale["left"] -= 1
            raise StaleDataError("UPDATE on 'sent_messages' expected to update 1 row(s); 0 were matched.")
        uow.session.add(ProcessedMarker(envelope))

    def settle(envelopes, uow):
        if stale["settles"]:  # met the other processor's settle: must be run again, not dropped
            stale["settles"] -= 1
            raise StaleDataError("UPDATE on 'receipts' expected to update 1 row(s); 0 were matched.")
        ids = [e.id for e in envelopes]
        stored = uow.session.scalars(select(ProcessedEvent.event_id).where(ProcessedEvent.event_id.in_(ids))).all()
        committed_when_settled.append(sorted(stored) == sorted(ids))
        settled.extend(ids)
        return 0

    envelopes = publish(settings, [receipt("twilio", f"SM{n}", "delivered", n) for n in range(20)])
    processor = Processor("settling", (TOPIC_DELIVERY_RECEIPTS,), {DeliveryReceipt.ce_type: handler}, settle=settle)
    with running_processor(processor, settings) as result:
        wait_for(lambda: sorted(settled) == sorted(e.id for e in envelopes), timeout=60)
    assert stale == {"left": 0, "settles": 0} and result["stats"].retries >= 3 and result["stats"].dead_lettered == 0
    assert sorted(settled) == sorted(e.id for e in envelopes)  # each once, after its batch
    assert committed_when_settled and all(committed_when_settled)


def test_a_settle_that_meets_a_database_outage_is_finished_when_the_database_is_back(
    broker, topic_prefix, migrated_url
):
    """Every attempt of a batch's settle fails (database away): its events are kept and settled by the loop later,
    not left to the sweep (5 minutes by default, off here)."""
    from sqlalchemy.exc import OperationalError

    settings = settings_for(broker.bootstrap_servers, topic_prefix, migrated_url, consumer_max_poll_records=50,
                            sweep_interval_seconds=3600.0)
    create_all_topics(settings)
    outage = {"failures": SETTLE_ATTEMPTS + 2}  # more than one batch's attempts: the loop must come back to it
    settled: list[str] = []

    def settle(envelopes, uow):
        if outage["failures"]:
            outage["failures"] -= 1
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))
        settled.extend(e.id for e in envelopes)
        return 0

    envelopes = publish(settings, [receipt("twilio", f"SMo{n}", "delivered", n) for n in range(10)])
    processor = Processor("deferring", (TOPIC_DELIVERY_RECEIPTS,),
                          {DeliveryReceipt.ce_type: lambda envelope, uow: None}, settle=settle)
    with running_processor(processor, settings) as result:
        wait_for(lambda: sorted(settled) == sorted(e.id for e in envelopes), timeout=60)
    assert outage["failures"] == 0 and result["stats"].retries >= SETTLE_ATTEMPTS + 2
    assert sorted(settled) == sorted(e.id for e in envelopes)  # each settled once, after the outage


def test_sends_and_receipts_arriving_together_all_match_without_the_sweep(broker, topic_prefix, migrated_url, session):
    """Each receipt published right behind its send, both processors consuming at once, the sweep off: every
    receipt is matched by a handler or a settle (on PostgreSQL some pairs commit in overlapping transactions)."""
    settings = settings_for(broker.bootstrap_servers, topic_prefix, migrated_url, sweep_interval_seconds=3600.0,
                            consumer_max_poll_records=20)
    create_all_topics(settings)
    pairs = 400
    with running(settings, ["sent-messages", "reconciliation"]) as outcome:
        for start in range(0, pairs, 50):
            together = [(sent("sinch", f"pair-{n}"), receipt("sinch", f"pair-{n}", "delivered", n))
                        for n in range(start, start + 50)]
            publish(settings, [payload for pair in together for payload in pair])
        wait_for(lambda: scalar(session, select(func.count()).select_from(ProcessedEvent)) == 2 * pairs, timeout=90)
        wait_for(lambda: scalar(session, select(func.count()).where(SentMessage.status == "delivered")) == pairs,
                 timeout=15)
    session.rollback()
    assert session.scalar(select(func.count()).where(Receipt.parked)) == 0
    assert session.scalar(select(func.count()).where(Receipt.outcome == "applied")) == pairs  # each applied once
    assert outcome["stats"]["reconciliation"].handled == pairs
