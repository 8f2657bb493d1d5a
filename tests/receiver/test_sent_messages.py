"""`POST /v1/sent-messages` through the real app and broker: canonical messages and raw vendor send responses.

Fixtures: send responses as the vendors document them (shared/seeds: Fortytwo's outer response, Mobivate's message
record; Sinch's batch response from its SDK models; FullSMS's campaign response); numbers from the numbering plans
libphonenumber carries (+1 212/416, +7 916/701) and Ofcom's drama range (+44 7700 900xxx)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from receiver.vendors.sinch import sinch_message_id

PATH = "/v1/sent-messages"
TOPIC = "sms.sent-messages"
CANONICAL = {"vendor": "fortytwo", "message_id": "000123", "recipient": "+44 7700 900123",
             "sent_at": "2024-03-05T10:00:00Z", "sender": "ACME", "batch_id": "job-1", "campaign_id": "spring",
             "client_ref": "order-1", "parts": 2, "account": "main"}
FORTYTWO = {"vendor": "fortytwo", "sender": "ACME", "response": {
    "api_job_id": "3f2c9a10-5b7e-4d21-9c44-8e1f0a2b3c4d", "client_job_id": "camp-2024-03",
    "results": [{"447700900123": {"message_id": "17096336420010004321", "custom_id": "order-4411"}},
                {"33612345678": {"message_id": "17096336420010004322"}}]}}
MOBIVATE = {"vendor": "mobivate", "response": {
    "id": "ef5796ce-e326-4a09-9033-6b457039b1ba", "originator": "Test", "recipient": "44700011122",
    "body": "This is a test message", "routeId": "mglobal", "reference": None, "campaignId": None}}
SINCH = {"vendor": "sinch", "response": {
    "id": "01hzx3k9q2m4n6p8r0t2v4w6y8", "to": ["+447700900123", "4915112345678"], "from": "ACME",
    "created_at": "2024-03-05T10:00:00.123Z", "client_reference": "order-9", "type": "mt_text", "body": "Hi"}}
FULLSMS = {"vendor": "fullsms", "campaign_id": "spring", "recipients": ["972541111111", "972542222222"],
           "response": {"status": "approved", "campaign_id": "68a6ce95-03b2-11ee-910d-0264ec2cd11b",
                        "total_sent": 2, "invalid": {"count": 0, "numbers": []}}}


def post(client, payload, **kwargs):
    """POST a body to the route and return the response."""
    return client.post(PATH, json=payload, **kwargs)


def test_canonical_message_is_published_with_headers_and_key(client, published):
    response = post(client, CANONICAL)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "accepted" and len(body["event_ids"]) == 1
    [record] = published.records(TOPIC)
    headers = dict(record.headers)
    assert headers["ce_type"] == b"sms.sent_message.v1" and headers["ce_source"] == b"smshooks/fortytwo"
    assert headers["ce_id"].decode() == body["event_ids"][0] and headers["ce_time"] == b"2024-03-05T10:00:00Z"
    assert record.key == b"fortytwo:123"  # normalized like Fortytwo receipts
    [event] = published.events(TOPIC)
    sent = event.payload
    assert (sent.recipient, sent.sender, sent.batch_id, sent.campaign_id, sent.client_ref, sent.parts) == (
        "447700900123", "ACME", "job-1", "spring", "order-1", 2)
    assert (sent.account, sent.country_iso2) == ("main", "GB")


def test_canonical_list_fans_out_and_defaults_sent_at_to_receive_time(client, published):
    items = [{"vendor": "jasmin", "message_id": f"ID-{n}", "recipient": "4915112345678"} for n in range(3)]
    response = post(client, items)
    assert response.status_code == 200 and len(set(response.get_json()["event_ids"])) == 3
    events = published.events(TOPIC, 3)
    assert {e.key for e in events} == {"jasmin:id-0", "jasmin:id-1", "jasmin:id-2"}
    assert all(e.payload.sent_at == e.payload.received_at and e.payload.parts == 1 for e in events)
    assert {e.payload.country_iso2 for e in events} == {"DE"}


def test_duplicate_registration_has_the_same_event_id(client):
    first = post(client, CANONICAL).get_json()["event_ids"]
    assert post(client, CANONICAL).get_json()["event_ids"] == first


def test_fortytwo_response_fans_out_per_destination(client, published):
    response = post(client, FORTYTWO)
    assert response.status_code == 200, response.get_json()
    events = {e.key: e.payload for e in published.events(TOPIC, 2)}
    assert set(events) == {"fortytwo:17096336420010004321", "fortytwo:17096336420010004322"}
    first, second = events["fortytwo:17096336420010004321"], events["fortytwo:17096336420010004322"]
    assert (first.recipient, first.client_ref, first.batch_id, first.sender) == (
        "447700900123", "order-4411", "3f2c9a10-5b7e-4d21-9c44-8e1f0a2b3c4d", "ACME")
    assert (second.recipient, second.client_ref, second.country_iso2) == ("33612345678", "camp-2024-03", "FR")
    assert second.raw["payload"]["response"]["results"] == {"33612345678": {"message_id": "17096336420010004322"}}


def test_fortytwo_results_as_one_object_and_unsent_destinations_are_skipped(client, published):
    results = {"447700900123": {"message_id": "1"}, "447700900124": {}}
    response = post(client, dict(FORTYTWO, response=dict(FORTYTWO["response"], results=results)))
    assert response.status_code == 200 and len(response.get_json()["event_ids"]) == 1
    [event] = published.events(TOPIC)
    assert event.key == "fortytwo:1"


def test_mobivate_record_matches_the_receipt_id_spelling(client, published):
    response = post(client, MOBIVATE)
    assert response.status_code == 200, response.get_json()
    [event] = published.events(TOPIC)
    assert event.key == "mobivate:ef5796cee3264a0990336b457039b1ba"
    assert event.source == "smshooks/mobivate"
    assert (event.payload.recipient, event.payload.sender, event.payload.client_ref) == ("44700011122", "Test", None)


def test_sinch_batch_fans_out_per_recipient(client, published):
    response = post(client, SINCH)
    assert response.status_code == 200, response.get_json()
    events = {e.payload.recipient: e for e in published.events(TOPIC, 2)}
    assert set(events) == {"447700900123", "4915112345678"}
    uk = events["447700900123"]
    assert uk.payload.message_id == sinch_message_id("01HZX3K9Q2M4N6P8R0T2V4W6Y8", "447700900123")
    assert uk.key == "sinch:01HZX3K9Q2M4N6P8R0T2V4W6Y8:447700900123"
    assert (uk.payload.batch_id, uk.payload.sender, uk.payload.client_ref) == (
        "01HZX3K9Q2M4N6P8R0T2V4W6Y8", "ACME", "order-9")
    assert uk.payload.sent_at == datetime(2024, 3, 5, 10, 0, 0, 123000, tzinfo=UTC)
    assert uk.payload.raw["payload"]["response"]["to"] == ["+447700900123"]


def test_fullsms_campaign_uses_the_listed_recipients(client, published):
    response = post(client, FULLSMS)
    assert response.status_code == 200, response.get_json()
    events = {e.key: e.payload for e in published.events(TOPIC, 2)}
    campaign = "68a6ce95-03b2-11ee-910d-0264ec2cd11b"
    assert set(events) == {f"fullsms:{campaign}:972541111111", f"fullsms:{campaign}:972542222222"}
    sent = events[f"fullsms:{campaign}:972541111111"]
    assert (sent.vendor, sent.batch_id, sent.campaign_id, sent.country_iso2) == ("fullsms", campaign, "spring", "IL")


def test_fullsms_refused_numbers_are_not_registered(client, published):
    response_body = dict(FULLSMS["response"], total_sent=1, invalid={"count": 1, "numbers": ["972542222222"]})
    response = post(client, dict(FULLSMS, response=response_body))
    assert response.status_code == 200 and len(response.get_json()["event_ids"]) == 1
    [event] = published.events(TOPIC)
    assert event.payload.recipient == "972541111111"


def test_wrapper_values_win_over_the_response(client, published):
    response = post(client, dict(MOBIVATE, sender="Override", sent_at="2024-03-05T09:00:00+01:00", client_ref="x"))
    assert response.status_code == 200
    [event] = published.events(TOPIC)
    assert (event.payload.sender, event.payload.client_ref) == ("Override", "x")
    assert event.payload.sent_at == datetime(2024, 3, 5, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "code", "path"),
    [
        ({k: v for k, v in CANONICAL.items() if k != "recipient"}, "syntax_constraint_violation", ["recipient"]),
        (dict(CANONICAL, recipient="someone"), "syntax_invalid_parameter_format", ["recipient"]),
        (dict(CANONICAL, sent_at="yesterday"), "syntax_invalid_parameter_format", ["sent_at"]),
        (dict(CANONICAL, parts=0), "syntax_constraint_violation", ["parts"]),
        (dict(CANONICAL, vendor="No Such Vendor!"), "syntax_constraint_violation", ["vendor"]),
        (dict(CANONICAL, vendor="acme"), "syntax_constraint_violation", ["vendor"]),  # no receipt could ever match
        ([CANONICAL, {"vendor": "x"}], "syntax_constraint_violation", ["1", "message_id"]),
        ([], "syntax_constraint_violation", ["_schema"]),
        ("just text", "syntax_constraint_violation", ["_schema"]),
        (dict(FORTYTWO, vendor="twilio"), "syntax_constraint_violation", ["vendor"]),
        (dict(FORTYTWO, response={"results": {}}), "syntax_constraint_violation", ["response", "api_job_id"]),
        (dict(FORTYTWO, response=dict(FORTYTWO["response"], results={"447700900123": {}})),
         "syntax_constraint_violation", ["response", "results"]),
        (dict(FORTYTWO, response=dict(FORTYTWO["response"], results={"not-a-number": {"message_id": "1"}})),
         "syntax_invalid_parameter_format", ["response", "results"]),
        (dict(MOBIVATE, response={"id": "x"}), "syntax_constraint_violation", ["response", "recipient"]),
        # an empty list of records: before, a wait for zero deliveries that ended in 503 after the publish timeout
        (dict(MOBIVATE, response=[]), "syntax_constraint_violation", ["response"]),
        (dict(SINCH, response=dict(SINCH["response"], to=[])), "syntax_constraint_violation", ["response", "to"]),
        (dict(SINCH, response="01HZX"), "syntax_constraint_violation", ["response"]),
        ({k: v for k, v in FULLSMS.items() if k != "recipients"}, "syntax_constraint_violation", ["recipients"]),
        (dict(FULLSMS, response={"status_code": 403, "message": "Unauthenticated"}), "syntax_constraint_violation",
         ["response", "campaign_id"]),
    ],
)
def test_bad_shapes_are_400_and_publish_nothing(client, published, payload, code, path):
    response = post(client, payload)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()
    assert error["code"] == code
    errors = error["errors"]
    for name in path:
        errors = errors[name]
    assert errors
    assert published.records(TOPIC, expected=1, timeout=1.0) == []


def test_wrong_content_type_is_415_and_invalid_json_400(client):
    response = client.post(PATH, data="vendor=fortytwo", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and response.get_json()["code"] == "unsupported_media_type"
    response = client.post(PATH, data="{oops", content_type="application/json")
    assert response.status_code == 400 and response.get_json()["code"] == "syntax_invalid_json"
    response = client.get(PATH)
    assert response.status_code == 405


def test_api_token_is_required_when_configured(make_client, published):
    client = make_client(api_token="s3cret")
    assert post(client, CANONICAL).status_code == 401
    assert post(client, CANONICAL, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert post(client, CANONICAL, headers={"Authorization": "Basic s3cret"}).get_json()["code"] == "unauthorized"
    response = post(client, CANONICAL, headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200
    assert len(published.events(TOPIC)) == 1


def test_broker_down_is_503():
    from receiver import create_app
    from smshooks.broker import free_port

    app = create_app({"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}", "publish_timeout_seconds": 0.5})
    response = app.test_client().post(PATH, json=CANONICAL)
    assert response.status_code == 503 and response.get_json()["code"] == "service_unavailable"


def test_openapi_documents_the_route(client):
    document = client.get("/openapi.json").get_json()
    assert "post" in document["paths"][PATH]
    assert {"SentMessage", "SendResponse"} <= set(document["components"]["schemas"])


@pytest.mark.parametrize(
    ("recipient", "country"),
    [
        ("+12125550100", "US"), ("14165550123", "CA"),  # +1 is shared: the number's own plan decides
        ("+79161234567", "RU"), ("77012345678", "KZ"),  # +7 likewise
        ("+447700900123", "GB"), ("61491570156", "AU"),
        ("+870773111632", None),  # a global service (Inmarsat) has no country
    ],
)
def test_the_recipients_country_comes_from_its_numbering_plan(client, published, recipient, country):
    assert post(client, dict(CANONICAL, recipient=recipient)).status_code == 200
    [event] = published.events(TOPIC)
    assert event.payload.country_iso2 == country


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (dict(CANONICAL, sent_at="05/03/2024"), "sent_at"),  # a vendor's date would be a warning; ours is a 400
        (dict(CANONICAL, recipient="60777x"), "recipient"),
        (dict(CANONICAL, client_ref="x" * 300), "client_ref"),
    ],
)
def test_sent_messages_stay_strict(client, published, payload, field):
    response = post(client, payload)
    assert response.status_code == 400 and field in response.get_json()["errors"]
    assert published.records(TOPIC, expected=1, timeout=1.0) == []
