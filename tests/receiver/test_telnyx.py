"""Telnyx messaging webhooks through the real app and broker, signed as Telnyx signs them.

Fixtures: Telnyx's API reference examples: the `deliveryUpdate` callback (message.sent, an MMS to +18665550001, `to[0]`
queued, `occurred_at` written as the placeholder "date-time", `cost.amount` a JSON number) and the
`InboundMessageEvent` (message.received from +18665550001 to +18445550001, "Hello, World!"); the finalized receipts
are that same example with the statuses and `errors[]` of the `telnyx` SDK's `OutboundMessagePayload` model
(`to[].status` literal, `MessagingError` code/title/detail). Each fixture is checked against the SDK's own models.

Signatures: a key pair the test makes (PyNaCl, as the SDK uses), signing `{timestamp}|{body}`; the SDK's own
`verify_webhook_signature` accepts each signed request, so the test signs as Telnyx does.
"""

from __future__ import annotations

import base64
import copy
import json
import time

import pytest
from nacl.signing import SigningKey
from telnyx.lib.webhook_verification import verify_webhook_signature
from telnyx.types.delivery_update_webhook_event import DeliveryUpdateWebhookEvent
from telnyx.types.inbound_message_webhook_event import InboundMessageWebhookEvent

from core.settings import AuthScheme
from receiver.auth import CallbackRequest, verify_telnyx_signature
from receiver.errors import Unauthorized

RECEIPTS = "/v1/callbacks/telnyx/delivery-receipts"
INBOUND = "/v1/callbacks/telnyx/inbound-messages"
MESSAGE_ID = "40385f64-5717-4562-b3fc-2c963f66afa6"

DELIVERY_UPDATE = {
    "data": {
        "record_type": "event",
        "id": "86f58db9-0fe3-4adc-9d1f-46e66e6e9323",
        "event_type": "message.sent",
        "occurred_at": "date-time",
        "payload": {
            "record_type": "message", "direction": "outbound", "id": MESSAGE_ID, "type": "MMS",
            "messaging_profile_id": "4000eba1-a0c0-4563-9925-b25e842a7cb6",
            "organization_id": "b448f9cc-a842-4784-98e9-03c1a5872950",
            "from": {"phone_number": "+18445550001", "carrier": "TELNYX LLC", "line_type": "VoIP"},
            "to": [{"phone_number": "+18665550001", "status": "queued", "carrier": "T-MOBILE USA, INC.",
                    "line_type": "Wireless"}],
            "cc": [], "text": "Hello, World!", "subject": "From Telnyx!",
            "media": [{"url": "https://pbs.twimg.com/profile_images/1142168442042118144/AW3F4fFD_400x400.png",
                       "content_type": None, "sha256": None, "size": None}],
            "webhook_url": "https://www.example.com/hooks", "webhook_failover_url": "https://backup.example.com/hooks",
            "encoding": "GSM-7", "parts": 1, "tags": ["Greetings"],
            "cost": {"amount": 0.0051, "currency": "USD"},
            "cost_breakdown": {"carrier_fee": {"amount": 0.00305, "currency": "USD"},
                               "rate": {"amount": 0.00205, "currency": "USD"}},
            "tcr_campaign_id": "TCPA3X7", "tcr_campaign_billable": True, "tcr_campaign_registered": "REGISTERED",
            "received_at": "2019-01-23T18:10:02.574Z", "sent_at": None, "completed_at": None, "valid_until": None,
            "errors": [],
        },
    },
    "meta": {"attempt": 1, "delivered_to": "https://www.example.com/hooks"},
}
INBOUND_EVENT = {
    "data": {
        "event_type": "message.received", "id": "bf6307bd-884d-4c1f-b6ea-c62b8c495d3c", "occurred_at": "date-time",
        "payload": {
            "cc": [], "completed_at": None, "cost": {"amount": 0.0051, "currency": "USD"}, "direction": "inbound",
            "encoding": "GSM-7", "errors": [],
            "from": {"carrier": "T-MOBILE USA, INC.", "line_type": "Wireless", "phone_number": "+18665550001"},
            "id": "7ee4241c-f127-47e5-9c34-3aac291f8058", "media": [],
            "messaging_profile_id": "0f512bda-ae1e-4597-8e11-e5f5686b97d3",
            "organization_id": "b448f9cc-a842-4784-98e9-03c1a5872950", "parts": 1,
            "received_at": "2019-01-23T18:10:02.574Z", "record_type": "message", "sent_at": None,
            "subject": "From Telnyx!", "tags": ["Greetings"], "text": "Hello, World!",
            "to": [{"carrier": "TELNYX LLC", "line_type": "VoIP", "phone_number": "+18445550001",
                    "status": "delivered"}],
            "type": "SMS", "valid_until": None,
            "webhook_failover_url": "https://backup.example.com/hooks", "webhook_url": "https://www.example.com/hooks",
        },
        "record_type": "event",
    }
}


def finalized(*recipients: tuple[str, str], errors: list | None = None) -> dict:
    """The docs' delivery update as a message.finalized with these (phone number, status) recipients."""
    body = copy.deepcopy(DELIVERY_UPDATE)
    body["data"].update(event_type="message.finalized", occurred_at="2019-01-23T18:10:04.101Z")
    payload = body["data"]["payload"]
    payload["to"] = [{"phone_number": number, "status": status, "carrier": "T-MOBILE USA, INC.",
                      "line_type": "Wireless"} for number, status in recipients]
    payload.update(completed_at="2019-01-23T18:10:04.000Z", sent_at="2019-01-23T18:10:03.000Z",
                   errors=errors or [], cost={"amount": "0.0051", "currency": "USD"},
                   # the SDK's model types amounts as decimal strings, where the docs' example has numbers
                   cost_breakdown={"carrier_fee": {"amount": "0.00305", "currency": "USD"},
                                   "rate": {"amount": "0.00205", "currency": "USD"}})
    return body


class Signer:
    """Signs bodies as Telnyx does, with a key pair of its own."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.public_key = base64.b64encode(bytes(self.key.verify_key)).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = base64.b64encode(self.key.sign(stamp.encode() + b"|" + body).signature).decode()
        headers = {"telnyx-signature-ed25519": signature, "telnyx-timestamp": stamp}
        if timestamp is None:  # the SDK checks its own clock: only a current signature can be shown to it
            verify_webhook_signature(body, headers, self.public_key)
        return headers


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def signed_client(make_client, signer):
    return make_client(vendors={"telnyx": {"auth": [{"scheme": "telnyx_signature", "public_key": signer.public_key}]}})


def post(client, path: str, document: dict, signer: Signer | None = None, **signing):
    body = json.dumps(document).encode()
    headers = signer.headers(body, **signing) if signer else {}
    return client.post(path, data=body, content_type="application/json", headers=headers)


def test_fixtures_are_what_the_sdk_models_describe():
    sent = DeliveryUpdateWebhookEvent.model_validate(finalized(("+18665550001", "delivery_failed")))
    assert sent.data.payload.to[0].status == "delivery_failed" and sent.data.event_type == "message.finalized"
    inbound = copy.deepcopy(INBOUND_EVENT)
    del inbound["data"]["occurred_at"]  # the docs' placeholder, which the SDK's datetime refuses
    inbound["data"]["payload"]["cost"]["amount"] = "0.0051"  # a decimal string in the SDK's model
    received = InboundMessageWebhookEvent.model_validate(inbound)
    assert received.data.payload.from_.phone_number == "+18665550001"


def test_docs_message_sent_is_a_pending_receipt_with_its_placeholder_time_as_a_warning(signed_client, signer,
                                                                                       published):
    response = post(signed_client, RECEIPTS, DELIVERY_UPDATE, signer)
    assert response.status_code == 200, response.get_json()
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.message_id, receipt.status, receipt.vendor_status) == (MESSAGE_ID, "pending", "queued")
    assert (receipt.recipient, receipt.sender, receipt.network) == ("18665550001", "+18445550001",
                                                                    "T-MOBILE USA, INC.")
    assert (receipt.price, receipt.currency, receipt.parts) == ("0.0051", "USD", 1)
    assert receipt.signature_valid is True and receipt.occurred_at is None
    assert [w["field"] for w in receipt.parse_warnings] == ["occurred_at"]
    assert receipt.raw["payload"]["data"]["payload"]["tcr_campaign_id"] == "TCPA3X7"


@pytest.mark.parametrize(("status", "ours"), [
    ("delivered", "delivered"), ("delivery_failed", "failed"), ("sending_failed", "failed"),
    ("delivery_unconfirmed", "unknown"), ("expired", "expired"), ("read", "delivered"), ("teleported", "unknown"),
])
def test_finalized_statuses_map(client, published, status, ours):
    assert post(client, RECEIPTS, finalized(("+18665550001", status))).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status) == (ours, status)


def test_finalized_failure_carries_the_first_error(client, published):
    errors = [{"code": "40008", "title": "Undeliverable", "detail": "The carrier could not deliver it."}]
    assert post(client, RECEIPTS, finalized(("+18665550001", "delivery_failed"), errors=errors)).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.vendor_code, receipt.error_description) == ("40008",
                                                                 "Undeliverable - The carrier could not deliver it.")
    assert receipt.operator_done_at is not None and receipt.occurred_at.isoformat().startswith("2019-01-23T18:10:04")


def test_group_message_fans_out_one_receipt_per_recipient_and_keeps_a_bad_entry(client, published):
    document = finalized(("+18665550001", "delivered"), ("+18665550002", "delivery_failed"))
    document["data"]["payload"]["to"].append({"phone_number": "+18665550003"})  # no status: cannot be a receipt
    response = post(client, RECEIPTS, document)
    assert response.status_code == 200
    assert [r["entry"] for r in response.get_json()["rejected_entries"]] == [2]
    receipts = sorted((e.payload for e in published.events("sms.delivery-receipts", 2)), key=lambda r: r.recipient)
    assert [(r.message_id, r.batch_id, r.status) for r in receipts] == [
        (f"{MESSAGE_ID}:18665550001", MESSAGE_ID, "delivered"),
        (f"{MESSAGE_ID}:18665550002", MESSAGE_ID, "failed"),
    ]
    [rejected] = published.rejected()
    assert rejected["entry"] == 2 and rejected["code"] == "syntax_constraint_violation"


def test_docs_inbound_message(signed_client, signer, published):
    assert post(signed_client, INBOUND, INBOUND_EVENT, signer).status_code == 200
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.message_id, message.from_, message.to, message.text) == (
        "7ee4241c-f127-47e5-9c34-3aac291f8058", "18665550001", "18445550001", "Hello, World!")
    assert message.occurred_at.isoformat().startswith("2019-01-23T18:10:02.574")
    assert message.network == "T-MOBILE USA, INC."


def test_one_url_per_profile_so_each_route_reads_either_kind(client, published):
    """A messaging profile has a single webhook URL: an inbound STOP posted to the receipts route is not lost."""
    assert post(client, RECEIPTS, INBOUND_EVENT).status_code == 200
    assert post(client, INBOUND, finalized(("+18665550001", "delivered"))).status_code == 200
    assert published.events("sms.inbound-messages")[0].payload.text == "Hello, World!"
    assert published.events("sms.delivery-receipts")[0].payload.status == "delivered"


def test_rcs_inbound_text_comes_from_body(client, published):
    document = copy.deepcopy(INBOUND_EVENT)
    payload = document["data"]["payload"]
    del payload["text"]
    payload.update(type="RCS", body={"text": "STOP"})
    assert post(client, INBOUND, document).status_code == 200
    assert published.events("sms.inbound-messages")[0].payload.text == "STOP"


@pytest.mark.parametrize(("path", "remove", "field"), [
    (RECEIPTS, "id", "id"), (RECEIPTS, "to", "to"), (INBOUND, "id", "id"), (INBOUND, "from", "from"),
    (INBOUND, "text", "text"),
])
def test_essential_fields(client, path, remove, field):
    document = copy.deepcopy(INBOUND_EVENT if path == INBOUND else finalized(("+18665550001", "delivered")))
    del document["data"]["payload"][remove]
    response = post(client, path, document)
    assert response.status_code == 400
    assert field in response.get_json()["errors"]


def test_a_non_message_event_is_refused_as_unknown_type(client):
    document = {"data": {"event_type": "call.initiated", "payload": {"call_control_id": "x"}}}
    assert post(client, RECEIPTS, document).status_code == 403


@pytest.mark.parametrize("tamper", ["wrong key", "stale", "body", "missing", "not base64"])
def test_signature_failures_are_401(signed_client, signer, tamper):
    body = json.dumps(DELIVERY_UPDATE).encode()
    headers = signer.headers(body)
    if tamper == "wrong key":
        headers = Signer().headers(body)
    elif tamper == "stale":
        headers = signer.headers(body, timestamp=int(time.time()) - 301)
    elif tamper == "body":
        body = body.replace(b"queued", b"delivered")
    elif tamper == "missing":
        del headers["telnyx-signature-ed25519"]
    else:
        headers["telnyx-signature-ed25519"] = "!!!"
    response = signed_client.post(RECEIPTS, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 401


def test_verifier_window_uses_the_injected_clock(signer):
    body = b'{"data":{}}'
    headers = signer.headers(body, timestamp=1_700_000_000)
    request = CallbackRequest(method="POST", url="", path_token=None, query=[], form=[], headers=headers, body=body,
                              client_ip="127.0.0.1")
    scheme = AuthScheme(scheme="telnyx_signature", public_key=signer.public_key, tolerance_seconds=300)
    verify_telnyx_signature(scheme, request, clock=lambda: 1_700_000_299)
    with pytest.raises(Unauthorized):
        verify_telnyx_signature(scheme, request, clock=lambda: 1_700_000_301)


def test_send_response_registers_ids_its_receipts_carry(client, published):
    """The SDK's `MessageSendResponse` shape: `data` is the OutboundMessagePayload the webhooks carry."""
    response = finalized(("+18665550001", "queued"))["data"]["payload"]
    document = {"vendor": "telnyx", "response": {"data": {**response, "id": MESSAGE_ID.upper()}}}
    assert client.post("/v1/sent-messages", json=document).status_code == 200
    [event] = published.events("sms.sent-messages")
    assert (event.payload.message_id, event.payload.recipient, event.payload.sender) == (
        MESSAGE_ID, "18665550001", "+18445550001")
