"""`smshooks replay rejected` and `replay dlq` against a real broker and database: callbacks refused under a wrong
configuration come back after the fix and the processors apply them once; a second replay changes nothing.

The Twilio status callback is the form Twilio posts (its docs' status callback parameters, as in
tests/receiver/test_twilio.py); the refusal is ours (an AccountSid we were not configured for).
"""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import func, select

from core.events import TOPIC_CALLBACKS_REJECTED, TOPIC_DELIVERY_RECEIPTS, topic_name
from processors.db.models import Receipt, SentMessage
from receiver import create_app
from smshooks.cli import main
from tests.conftest import consume_all
from tests.processors.factories import create_all_topics, publish, publish_raw, running, sent, settings_for, wait_for
from tests.receiver.conftest import client_maker

ACCOUNT = "AC00000000000000000000000000000001"
STATUS = {"MessageSid": "SM1f0e2d3c4b5a69788796a5b4c3d2e1f0", "MessageStatus": "delivered", "To": "+447700900123",
          "From": "+15005550006", "AccountSid": ACCOUNT}


def scalar(session, statement):
    session.rollback()
    return session.scalar(statement)


def replay(env: dict[str, str], *args: str) -> dict:
    result = CliRunner().invoke(main, ["replay", *args, "--json", "--no-progress"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_rejected_callbacks_are_replayed_after_the_fix_and_applied_once(
        broker, topic_prefix, migrated_url, session, tmp_path):
    settings = settings_for(broker.bootstrap_servers, topic_prefix, migrated_url)
    create_all_topics(settings)
    with client_maker(create_app, kafka_bootstrap_servers=broker.bootstrap_servers, topic_prefix=topic_prefix,
                      vendors={"twilio": {"account_ids": ["AC0000000000000000000000000000ffff"]}}) as make:
        client = make()
        refused = client.post("/v1/callbacks/twilio/delivery-receipts", data=STATUS)
        assert refused.status_code == 403 and refused.get_json()["code"] == "unknown_account"
        broken = client.post("/v1/callbacks/generic/delivery-receipts", data=b"{broken",
                             content_type="application/json")
        assert broken.status_code == 400
    assert len(consume_all(broker.bootstrap_servers, topic_name(topic_prefix, TOPIC_CALLBACKS_REJECTED), 2)) == 2
    publish(settings, [sent("twilio", STATUS["MessageSid"], recipient="+447700900123")])

    fixed = tmp_path / "fixed.toml"
    fixed.write_text(f'[vendors.twilio]\naccount_ids = ["{ACCOUNT}"]\n')
    env = {"SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "SMSHOOKS_TOPIC_PREFIX": topic_prefix,
           "SMSHOOKS_CONFIG": str(fixed)}
    receipts_topic = topic_name(topic_prefix, TOPIC_DELIVERY_RECEIPTS)

    dry = replay(env, "rejected", "--dry-run")
    assert (dry["read"], dry["published"], dry["still_rejected"]) == (2, 1, {"syntax_invalid_json": 1})
    assert consume_all(broker.bootstrap_servers, receipts_topic, 1, timeout=3) == []  # a dry run publishes nothing

    only_json = replay(env, "rejected", "--code", "syntax_invalid_json")
    assert (only_json["published"], only_json["filtered"]) == (0, 1)
    first = replay(env, "rejected", "--vendor", "twilio")
    assert first["published"] == 1 and first["by_topic"] == {receipts_topic: 1}
    with running(settings):
        wait_for(lambda: scalar(session, select(SentMessage.status).filter_by(
            vendor="twilio", message_id=STATUS["MessageSid"].lower())) == "delivered")
    second = replay(env, "rejected")
    assert second["published"] == 1  # the same event id again ...
    with running(settings):
        wait_for(lambda: len(consume_all(broker.bootstrap_servers, receipts_topic, 2, timeout=3)) == 2)
    assert scalar(session, select(func.count()).select_from(Receipt)) == 1  # ... which the processors skip


def test_dead_lettered_records_go_back_to_their_topic_with_their_headers(broker, topic_prefix, tmp_path):
    settings = settings_for(broker.bootstrap_servers, topic_prefix, "sqlite://")
    create_all_topics(settings)
    original = topic_name(topic_prefix, TOPIC_DELIVERY_RECEIPTS)
    headers = [("ce_id", b"e-1"), ("ce_type", b"sms.delivery_receipt.v1"), ("dlq_reason", b"bug"),
               ("dlq_original_topic", original.encode()), ("dlq_original_partition", b"0"),
               ("dlq_original_offset", b"7")]
    publish_raw(settings, f"{TOPIC_DELIVERY_RECEIPTS}.dlq", b"twilio:sm1", b'{"x":1}', headers)
    env = {"SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "SMSHOOKS_TOPIC_PREFIX": topic_prefix}

    assert replay(env, "dlq", "--topic", TOPIC_DELIVERY_RECEIPTS, "--dry-run")["published"] == 1
    assert consume_all(broker.bootstrap_servers, original, 1, timeout=3) == []
    assert replay(env, "dlq", "--topic", TOPIC_DELIVERY_RECEIPTS)["published"] == 1
    [record] = consume_all(broker.bootstrap_servers, original, 1)
    assert (record.key, record.value) == (b"twilio:sm1", b'{"x":1}')
    assert record.headers == [("ce_id", b"e-1"), ("ce_type", b"sms.delivery_receipt.v1")]
