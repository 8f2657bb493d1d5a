"""import_sent: CSV and JSON Lines files become sent_message events, bad rows are reported by line."""

from __future__ import annotations

import json

from processors.importer import import_sent
from receiver.contract import TOPIC_SENT_MESSAGES, Envelope, topic_name
from tests.conftest import consume_all
from tests.processors.factories import settings_for


def test_import_csv_and_jsonl(broker, topic_prefix, tmp_path):
    settings = settings_for(broker.bootstrap_servers, topic_prefix, f"sqlite:///{tmp_path / 'x.db'}")
    csv_file = tmp_path / "sent.csv"
    csv_file.write_text(
        "vendor,message_id,recipient,sent_at,campaign_id,parts\n"
        "twilio,SM1,+447700900001,2026-03-01T10:00:00Z,spring,2\n"
        "twilio,,+447700900002,2026-03-01T10:00:00Z,spring,1\n"
        "twilio,SM3,+447700900003,yesterday,spring,1\n"
        "twilio,SM4,+447700900004,2026-03-01T10:00:00,spring,1\n"
        "fortytwo,0042,+447700900005,2026-03-01T10:00:00+01:00,,x\n"
    )
    summary = import_sent(csv_file, settings, progress=False)
    assert (summary.rows, summary.published) == (5, 1)
    assert [line for line, _ in summary.rejected] == [3, 4, 5, 6]
    reasons = dict(summary.rejected)
    assert "message_id" in reasons[3] and "ISO 8601" in reasons[4] and "timezone" in reasons[5]
    assert "parts" in reasons[6]

    jsonl = tmp_path / "sent.jsonl"
    jsonl.write_text(
        json.dumps({"vendor": "sinch", "message_id": "01ARZ:447700900001", "recipient": "447700900001",
                    "sent_at": "2026-03-01T10:00:00Z"}) + "\n\n{broken\n"
        + json.dumps({"vendor": "sinch", "message_id": "x", "recipient": "1", "sent_at": "2026-03-01T10:00:00Z",
                      "colour": "blue"}) + "\n"
    )
    summary = import_sent(jsonl, settings, progress=False)
    assert summary.published == 1 and [line for line, _ in summary.rejected] == [3, 4]

    records = consume_all(broker.bootstrap_servers, topic_name(topic_prefix, TOPIC_SENT_MESSAGES), 2)
    events = [Envelope.decode(r.topic, r.key, r.headers, r.value) for r in records]
    assert sorted(e.payload.message_id for e in events) == ["01ARZ:447700900001", "SM1"]
    sm1 = next(e.payload for e in events if e.payload.message_id == "SM1")
    assert (sm1.parts, sm1.campaign_id, sm1.raw["campaign_id"]) == (2, "spring", "spring")
