"""Plivo callbacks through the real app and broker, signed with the `plivo` SDK's own V3 signature code.

Fixtures: nyaruka/courier handlers/plivo/handler_test.go (validReceive `To=2020&From=60124361111...&Text=Hello`,
validStatus with a lower-case `status=delivered`, validSentStatus whose part `MessageUUID=123` names its message in
`ParentMessageUUID=12345`); Plivo's "Message Status Callbacks" page (MessageUUID, To, From, Type, Status, Units,
TotalRate, TotalAmount, MCC, MNC, ErrorCode, ParentMessageUUID, Sequence, MessageTime/SentTime/DeliveryReportTime as
`YYYY-mm-dd HH:MM:SS.SSSSSS`) and "Handling incoming" page (MessageUUID, From, To, Text, Type, Units, MessageIntent).

Signatures: plivo-python `plivo.utils.signature_v3` (construct_post_url / construct_get_url, get_signature_v3) over the
public URL and the parameters, and its `validate_v3_signature` accepts every request the test signs.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from plivo.utils.signature_v3 import construct_get_url, construct_post_url, get_signature_v3, validate_v3_signature

RECEIPTS = "/v1/callbacks/plivo/delivery-receipts"
INBOUND = "/v1/callbacks/plivo/inbound-messages"
FORM = "application/x-www-form-urlencoded"
PUBLIC = "https://hooks.example.com"
TOKEN = "MAIN_AUTH_TOKEN_abcdefghijklmnop"
SUB_TOKEN = "SUB_AUTH_TOKEN_qrstuvwxyz012345"
UUID = "0936ec98-7c4c-11e4-9bd8-22000afa12b9"

COURIER_RECEIVE = "To=2020&From=60124361111&TotalRate=0&Units=1&Text=Hello&TotalAmount=0&Type=sms&MessageUUID=abc1234"
COURIER_STATUS = "MessageUUID=12345&status=delivered&To=%2B60124361111&From=2020"
COURIER_SENT_PART = "ParentMessageUUID=12345&status=sent&MessageUUID=123&To=%2B60124361111&From=2020"
DOCS_UNDELIVERED = urlencode({
    "MessageUUID": UUID.upper(), "To": "14155551234", "From": "14155550000", "Type": "sms", "Status": "undelivered",
    "Units": "2", "TotalRate": "0.00500", "TotalAmount": "0.01000", "MCC": "310", "MNC": "260", "ErrorCode": "200",
    "ParentMessageUUID": UUID.upper(), "Sequence": "3", "MessageTime": "2024-05-01 10:00:00.123456",
    "SentTime": "2024-05-01 10:00:01.000000", "DeliveryReportTime": "2024-05-01 10:00:05.654321",
    "PowerpackUUID": "",
})


def signed_headers(path: str, body: str, token: str = TOKEN, nonce: str = "05429567804466091622",
                   method: str = "POST", header: str = "X-Plivo-Signature-V3") -> dict[str, str]:
    """The headers Plivo sends, signed by its SDK's code over the public URL and the parameters."""
    url = PUBLIC + path
    params = {k: v for k, v in parse_qsl(body, keep_blank_values=True)}
    base = construct_get_url(url, params) if method == "GET" else construct_post_url(url, params)
    signature = get_signature_v3(token.encode(), base.decode(), nonce.encode()).decode()
    assert validate_v3_signature(method, url, nonce, token, signature, params)
    return {header: signature, "X-Plivo-Signature-V3-Nonce": nonce}


@pytest.fixture
def signed_client(make_client):
    return make_client(public_base_url=PUBLIC,
                       vendors={"plivo": {"auth": [{"scheme": "plivo_signature", "secret": TOKEN}]}})


def post(client, path: str, body: str, headers: dict | None = None):
    return client.post(path, data=body, content_type=FORM, headers=headers or {})


def test_courier_status_with_lower_case_status(client, published):
    assert post(client, RECEIPTS, COURIER_STATUS).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.message_id, event.payload.status, event.payload.recipient) == ("12345", "delivered",
                                                                                         "60124361111")


def test_a_part_is_a_receipt_for_its_parent_message(client, published):
    assert post(client, RECEIPTS, COURIER_SENT_PART).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.message_id, event.payload.status) == ("12345", "pending")
    assert event.payload.raw["payload"]["MessageUUID"] == "123"


def test_docs_undelivered_with_every_described_field(signed_client, published):
    response = post(signed_client, RECEIPTS, DOCS_UNDELIVERED, signed_headers(RECEIPTS, DOCS_UNDELIVERED))
    assert response.status_code == 200, response.get_json()
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.message_id, receipt.status, receipt.vendor_code) == (UUID, "failed", "200")
    assert (receipt.parts, receipt.price, receipt.currency, receipt.network) == (2, "0.01000", "USD", "310260")
    assert receipt.occurred_at.isoformat() == "2024-05-01T10:00:05.654321+00:00"
    assert receipt.signature_valid is True and receipt.parse_warnings == ()


@pytest.mark.parametrize(("status", "ours"), [
    ("queued", "pending"), ("sent", "pending"), ("delivered", "delivered"), ("read", "delivered"),
    ("failed", "failed"), ("undelivered", "failed"), ("rejected", "rejected"), ("teleported", "unknown"),
])
def test_statuses_map(client, published, status, ours):
    assert post(client, RECEIPTS, f"MessageUUID={UUID}&Status={status}&ErrorCode=000").status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_code) == (ours, None)


def test_a_time_that_does_not_parse_is_a_warning(client, published):
    assert post(client, RECEIPTS, f"MessageUUID={UUID}&Status=sent&SentTime=soon").status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert [w["field"] for w in event.payload.parse_warnings] == ["SentTime"]


def test_courier_receive_answers_empty_plivo_xml(signed_client, published):
    response = post(signed_client, INBOUND, COURIER_RECEIVE, signed_headers(INBOUND, COURIER_RECEIVE))
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert response.get_data(as_text=True).endswith("<Response></Response>")
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.message_id, message.from_, message.to, message.text) == ("abc1234", "60124361111", "2020",
                                                                              "Hello")


def test_inbound_by_get_signed_over_the_query(signed_client, published):
    headers = signed_headers(INBOUND, COURIER_RECEIVE, method="GET")
    response = signed_client.get(f"{INBOUND}?{COURIER_RECEIVE}", headers=headers)
    assert response.status_code == 200
    assert published.events("sms.inbound-messages")[0].payload.text == "Hello"


def test_mms_media_without_text(client, published):
    body = "From=14155551234&To=14155550000&Type=mms&MessageUUID=m1&MediaCount=1&Media0=https://media.example/a.jpg"
    assert post(client, INBOUND, body).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert event.payload.media == ({"url": "https://media.example/a.jpg", "content_type": None},)


@pytest.mark.parametrize(("path", "body", "field"), [
    (RECEIPTS, "Status=delivered", "MessageUUID"), (RECEIPTS, f"MessageUUID={UUID}", "Status"),
    (INBOUND, "To=2020&Text=Hi&MessageUUID=m1", "From"), (INBOUND, "From=2020&Text=Hi", "MessageUUID"),
    (INBOUND, "From=2020&MessageUUID=m1", "Text"),
])
def test_essential_fields(client, path, body, field):
    response = post(client, path, body)
    assert response.status_code == 400
    assert field in response.get_json()["errors"]


def test_main_account_signature_verifies_a_subaccount_callback(signed_client, published):
    """A subaccount's callback: V3 is signed with the subaccount's token, Ma-V3 with the main account's."""
    headers = {**signed_headers(RECEIPTS, COURIER_STATUS, token=SUB_TOKEN),
               "X-Plivo-Signature-Ma-V3": signed_headers(RECEIPTS, COURIER_STATUS)["X-Plivo-Signature-V3"]}
    assert post(signed_client, RECEIPTS, COURIER_STATUS, headers).status_code == 200


def test_one_of_several_comma_separated_signatures_suffices(signed_client, published):
    headers = signed_headers(RECEIPTS, COURIER_STATUS)
    headers["X-Plivo-Signature-V3"] = "bm90IGl0=," + headers["X-Plivo-Signature-V3"]
    assert post(signed_client, RECEIPTS, COURIER_STATUS, headers).status_code == 200


def test_url_with_our_own_query_is_signed_too(make_client, published):
    client = make_client(public_base_url=PUBLIC, vendors={"plivo": {"auth": [
        {"scheme": "plivo_signature", "secret": TOKEN}, {"scheme": "url_token", "token": "t0ken"}]}})
    path = RECEIPTS + "?token=t0ken"
    assert post(client, path, COURIER_STATUS, signed_headers(path, COURIER_STATUS)).status_code == 200


@pytest.mark.parametrize("tamper", ["wrong token", "body", "nonce", "missing", "other url"])
def test_signature_failures_are_401(signed_client, tamper):
    body, headers = COURIER_STATUS, signed_headers(RECEIPTS, COURIER_STATUS)
    if tamper == "wrong token":
        headers = signed_headers(RECEIPTS, body, token=SUB_TOKEN)
    elif tamper == "body":
        body = body.replace("delivered", "undelivered")
    elif tamper == "nonce":
        headers["X-Plivo-Signature-V3-Nonce"] = "1"
    elif tamper == "missing":
        del headers["X-Plivo-Signature-V3"]
    else:
        headers = signed_headers(INBOUND, body)
    assert post(signed_client, RECEIPTS, body, headers).status_code == 401


def test_send_response_pairs_message_uuids_with_the_listed_recipients(client, published):
    """Plivo's send response (courier's mock: `{"message_uuid": ["abc123"]}`, plus api_id and message)."""
    response = {"api_id": "db342550-7c4c-11e4-a6ba-22000ac6dfa5", "message": "message(s) queued",
                "message_uuid": [UUID.upper(), "abc123"]}
    document = {"vendor": "plivo", "response": response, "recipients": ["+14155551234", "+14155551235"]}
    assert client.post("/v1/sent-messages", json=document).status_code == 200
    sent = sorted((e.payload for e in published.events("sms.sent-messages", 2)), key=lambda m: m.recipient)
    assert [(m.message_id, m.recipient) for m in sent] == [(UUID, "14155551234"), ("abc123", "14155551235")]
    assert client.post("/v1/sent-messages", json={**document, "recipients": ["+14155551234"]}).status_code == 400
