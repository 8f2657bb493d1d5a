"""Described fields that do not parse: the callback is accepted, the value is null, the text stays in raw and the
event lists a parse warning (a 400 would make the vendor drop the receipt for good).

Fixture: a Jasmin level-2 DLR as Jasmin's thrower sends it (jookies/jasmin routing/throwers.py: the DLR's
parameters by GET), with a done date its SMSC wrote in a layout we do not read.
"""

from __future__ import annotations

import json

from prometheus_client import REGISTRY

RECEIPTS = "/v1/callbacks/jasmin/delivery-receipts"
DLR = {"id": "16fd2706-8baf-433b-82eb-8c7fada847da", "message_status": "DELIVRD", "level": "2",
       "connector": "smsc-uk", "id_smsc": "0A1B2C3D", "sub": "001", "dlvrd": "001", "subdate": "2403051015",
       "donedate": "05/03/2024 10:16", "err": "000", "text": "hello"}


def warning_count() -> float:
    return REGISTRY.get_sample_value(
        "smshooks_parse_warnings_total", {"vendor": "jasmin", "kind": "delivery-receipts", "field": "donedate"}
    ) or 0.0


def test_a_date_that_does_not_parse_is_a_warning_not_a_400(client, published):
    before = warning_count()
    response = client.get(RECEIPTS, query_string=DLR)
    assert response.status_code == 200 and response.data == b"ACK/Jasmin"
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert receipt.status == "delivered" and receipt.occurred_at is None and receipt.operator_done_at is None
    assert [w["field"] for w in receipt.parse_warnings] == ["donedate"]
    assert "yymmddhhmm" in receipt.parse_warnings[0]["reason"]
    assert receipt.raw["payload"]["donedate"] == "05/03/2024 10:16"
    assert warning_count() == before + 1


def test_a_callback_without_warnings_carries_an_empty_list(client, published):
    response = client.get(RECEIPTS, query_string=dict(DLR, donedate="2403051016"))
    assert response.status_code == 200
    [record] = published.records("sms.delivery-receipts")
    assert json.loads(record.value)["parse_warnings"] == []
