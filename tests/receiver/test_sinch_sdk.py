"""Sinch callbacks built and read by Sinch's own Python SDK (PyPI `sinch` 2.3.0, a test dependency), sent through
the real app and broker.

Bodies: the SDK's callback models (sinch.domains.sms.models.v1: RecipientDeliveryReport, BatchDeliveryReport,
MOTextMessage, MOBinaryMessage, MOMediaMessage) filled with the values of the SDK's recorded webhook fixtures
(sinch/sinch-sdk-python tests/e2e/sms/features/steps/webhooks.steps.py: the mock server's incoming SMS, full batch
report and Delivered/Aborted recipient reports), dumped as JSON the way the SDK serializes them. Each body is also
parsed back with the SDK's SmsSinchEvent.parse_event, so a test cannot pass on a body Sinch would not send, and
our normalized fields are compared with what the SDK reads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sinch.domains.sms.models.v1.response import BatchDeliveryReport, RecipientDeliveryReport
from sinch.domains.sms.models.v1.shared.mo_binary_message import MOBinaryMessage
from sinch.domains.sms.models.v1.shared.mo_text_message import MOTextMessage
from sinch.domains.sms.sinch_events.v1.sms_sinch_event import SmsSinchEvent

RECEIPTS = "/v1/callbacks/sinch/delivery-receipts"
INBOUND = "/v1/callbacks/sinch/inbound-messages"


def body_of(model) -> bytes:
    """The JSON Sinch sends for an SDK model: field aliases (`from`), no nulls."""
    return json.dumps(model.model_dump(mode="json", by_alias=True, exclude_none=True)).encode()


def sdk_read(body: bytes):
    """What Sinch's SDK makes of the body: it raises on anything that is not a Sinch SMS callback."""
    return SmsSinchEvent().parse_event(body, {"content-type": "application/json"})


def post(client, path: str, body: bytes):
    return client.post(path, data=body, content_type="application/json")


@pytest.mark.parametrize(
    ("status", "code", "recipient", "at", "expected"),
    [
        ("Delivered", 0, "12017777777", datetime(2024, 6, 6, 8, 17, 19, 210000, tzinfo=UTC), "delivered"),
        ("Aborted", 412, "12010000000", datetime(2024, 6, 6, 8, 17, 15, 603000, tzinfo=UTC), "failed"),
    ],
)
def test_recipient_reports_from_the_sdk(client, published, status, code, recipient, at, expected):
    report = RecipientDeliveryReport(
        type="recipient_delivery_report_sms", batch_id="01W4FFL35P4NC4K35SMSBATCH9", recipient=recipient,
        code=code, status=status, at=at, operator_status_at=datetime(2024, 6, 6, 8, 17, tzinfo=UTC),
        client_reference="client-ref",
    )
    body = body_of(report)
    sdk = sdk_read(body)
    response = post(client, RECEIPTS, body)
    assert response.status_code == 200, response.get_json()
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.status, receipt.vendor_status, receipt.vendor_code) == (expected, sdk.status, str(sdk.code))
    assert receipt.message_id == f"{sdk.batch_id}:{sdk.recipient}" and receipt.recipient == sdk.recipient
    assert (receipt.occurred_at, receipt.operator_done_at) == (sdk.at, sdk.operator_status_at)
    assert receipt.client_ref == sdk.client_reference and receipt.parse_warnings == ()


def test_a_full_batch_report_from_the_sdk_fans_out(client, published):
    report = BatchDeliveryReport(
        type="delivery_report_sms", batch_id="01W4FFL35P4NC4K35SMSBATCH8", total_message_count=2,
        client_reference="client-ref",
        statuses=[{"code": 0, "count": 2, "status": "Delivered", "recipients": ["12017777777", "33612345678"]}],
    )
    body = body_of(report)
    sdk = sdk_read(body)
    assert post(client, RECEIPTS, body).status_code == 200
    events = published.events("sms.delivery-receipts", 2)
    assert sorted(e.payload.recipient for e in events) == sorted(sdk.statuses[0].recipients)
    assert {(e.payload.status, e.payload.batch_id, e.payload.client_ref) for e in events} == {
        ("delivered", sdk.batch_id, "client-ref")}


def test_an_incoming_sms_from_the_sdk(client, published):
    message = MOTextMessage(
        type="mo_text", id="01W4FFL35P4NC4K35SMSBATCH8", from_="12015555555", to="12017777777",
        body="Hello John! \U0001f44b", operator_id="311071",
        received_at=datetime(2024, 6, 6, 7, 52, 37, 386000, tzinfo=UTC),
    )
    body = body_of(message)
    assert b'"from": "12015555555"' in body  # the SDK's alias: what goes on the wire is `from`
    sdk = sdk_read(body)
    assert post(client, INBOUND, body).status_code == 200
    [event] = published.events("sms.inbound-messages")
    inbound = event.payload
    assert (inbound.message_id, inbound.from_, inbound.to, inbound.text) == (sdk.id, sdk.from_, sdk.to, sdk.body)
    assert (inbound.occurred_at, inbound.network) == (sdk.received_at, sdk.operator_id)


def test_an_incoming_binary_sms_from_the_sdk(client, published):
    message = MOBinaryMessage(
        type="mo_binary", id="01W4FFL35P4NC4K35SMSBIN01", from_="12015555555", to="12017777777",
        body="SGVsbG8gV29ybGQ=", udh="050003010201", received_at=datetime(2024, 6, 6, 7, 52, 37, tzinfo=UTC),
    )
    body = body_of(message)
    sdk = sdk_read(body)
    assert post(client, INBOUND, body).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert (event.payload.binary, event.payload.udh) == (sdk.body, sdk.udh)


def test_an_alphanumeric_sender_the_sdk_accepts_is_an_inbound_message(client, published):
    message = MOTextMessage(type="mo_text", id="01W4FFL35P4NC4K35SMSALPHA", from_="SinchInfo", to="12017777777",
                            body="STOP", received_at=datetime(2024, 6, 6, 7, 52, 37, tzinfo=UTC))
    body = body_of(message)
    assert sdk_read(body).from_ == "SinchInfo"
    assert post(client, INBOUND, body).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert event.payload.from_ == "SinchInfo" and event.key == "SinchInfo"
