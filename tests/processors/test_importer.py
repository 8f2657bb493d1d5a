"""import_sent: CSV and JSON Lines files become sent_message events under the rules of POST /v1/sent-messages.

Rows are hand-written in our canonical shape (receiver/sent.py's SentMessageSchema); the Mobivate id is the dashed
UUID form its API answers (shared/reference), normalized to 32 hex digits as its receipts carry it.
"""

from __future__ import annotations

import json

from core.events import TOPIC_SENT_MESSAGES, Envelope, topic_name
from smshooks.importer import import_sent
from tests.conftest import consume_all
from tests.processors.factories import settings_for

MOBIVATE_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def test_a_file_is_checked_like_http_and_refused_rows_go_to_the_rejects_file(broker, topic_prefix, tmp_path):
    settings = settings_for(broker.bootstrap_servers, topic_prefix, f"sqlite:///{tmp_path / 'x.db'}")
    csv_file = tmp_path / "sent.csv"
    csv_file.write_text(
        "vendor,message_id,recipient,sent_at,campaign_id,parts,note\n"
        "twilio,SM1,+447700900001,2026-03-01T10:00:00Z,spring,2,first\n"             # 2: ok
        "twilio,,+447700900002,2026-03-01T10:00:00Z,spring,1,\n"                     # 3: no message_id
        "twilio,SM3,+447700900003,yesterday,spring,1,\n"                             # 4: sent_at format
        "twilio,SM4,+447700900004,,spring,1,\n"                                      # 5: no sent_at
        "acme,A1,+447700900005,2026-03-01T10:00:00Z,,,\n"                            # 6: vendor we do not serve
        "twilio,SM6,12,2026-03-01T10:00:00Z,,,\n"                                    # 7: not a phone number
        "fortytwo,0042,+33612345678,2026-03-01T10:00:00+01:00,,x,\n"                 # 8: parts
        f"mobivate,{MOBIVATE_ID},+33612345679,2026-03-01T11:00:00+01:00,,,extra\n"   # 9: ok, extra column ignored
    )
    summary = import_sent(csv_file, settings, progress=False)
    assert (summary.rows, summary.published) == (8, 2)
    reasons = dict(summary.rejected)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8]
    assert "message_id" in reasons[3] and "sent_at" in reasons[4] and "sent_at: required" in reasons[5]
    assert "vendor" in reasons[6] and "recipient" in reasons[7] and "parts" in reasons[8]
    rejects = [json.loads(line) for line in (tmp_path / "sent.csv.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == summary.rejected
    assert rejects[3]["row"]["vendor"] == "acme"  # the row as read, so it can be fixed and imported again

    jsonl = tmp_path / "sent.jsonl"
    jsonl.write_text(
        json.dumps({"vendor": "sinch", "message_id": "01ARZ:447700900001", "recipient": "447700900001",
                    "sent_at": "2026-03-01T10:00:00Z", "colour": "blue"}) + "\n\n{broken\n[1]\n"
    )
    summary = import_sent(jsonl, settings, progress=False, rejects=tmp_path / "bad.jsonl")
    assert (summary.rows, summary.published) == (3, 1)  # an extra key is ignored, as over HTTP
    assert [line for line, _ in summary.rejected] == [3, 4] and summary.rejects_path == str(tmp_path / "bad.jsonl")

    records = consume_all(broker.bootstrap_servers, topic_name(topic_prefix, TOPIC_SENT_MESSAGES), 3)
    events = {e.payload.message_id: e.payload for e in
              (Envelope.decode(r.topic, r.key, r.headers, r.value) for r in records)}
    # ids normalized as over HTTP (each vendor module's canonical_message_id), as the receipts will carry them
    assert sorted(events) == ["01ARZ:447700900001", "0f8fad5bd9cb469fa16570867728950e", "sm1"]
    sm1 = events["sm1"]
    assert (sm1.parts, sm1.campaign_id, sm1.recipient, sm1.country_iso2) == (2, "spring", "447700900001", "GB")
    assert events["0f8fad5bd9cb469fa16570867728950e"].country_iso2 == "FR"


def test_a_clean_file_writes_no_rejects_file(broker, topic_prefix, tmp_path):
    settings = settings_for(broker.bootstrap_servers, topic_prefix, f"sqlite:///{tmp_path / 'x.db'}")
    csv_file = tmp_path / "clean.csv"
    csv_file.write_text("vendor,message_id,recipient,sent_at\ngeneric,g-1,+4915112345678,2026-03-01T10:00:00Z\n")
    summary = import_sent(csv_file, settings, progress=False)
    assert (summary.rows, summary.published, summary.rejected, summary.rejects_path) == (1, 1, [], None)
    assert not (tmp_path / "clean.csv.rejects.jsonl").exists()
