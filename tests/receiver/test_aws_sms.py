"""The aws_sms adapter through the real app and broker: SNS HTTPS deliveries of AWS End User Messaging SMS events
and two-way SMS messages, the sns_signature scheme and the subscription handshake.

Fixtures: the SMS event is the "SMS example log" of the AWS End User Messaging user guide (Messaging events page);
the alphanumeric-sender event is the `detail` of its EventBridge "Event for a delivered SMS message" example; the
two-way message is the user guide's "Example of a two-way SMS message payload for Amazon SNS topics"; the SNS
envelopes follow the SNS developer guide's HTTP/HTTPS Notification and SubscriptionConfirmation JSON examples (sent
as text/plain). Signatures: SNS signs with AWS's private key, so each test makes its own RSA key and self-signed
certificate with `cryptography` and signs the documented string to sign ("name\\nvalue\\n" over Message, MessageId,
Subject if present, Timestamp, TopicArn, Type; or Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn,
Type), built here independently of the code under test; the certificate is served by a fake fetcher, never the
network.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from core.settings import ConfigError, load_settings
from receiver.vendors import auth_catalog, aws_sms

RECEIPTS = "/v1/callbacks/aws_sms/delivery-receipts"
INBOUND = "/v1/callbacks/aws_sms/inbound-messages"
TOPIC = "arn:aws:sns:us-east-1:123456789012:sms-events"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
SUBSCRIBE_URL = ("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + TOPIC
                 + "&Token=2336412f37fb687f5d51e6e2425dacbba3b1ac6cf6fd")
SMS_EVENT = {  # the user guide's SMS example log
    "eventType": "TEXT_SUCCESSFUL", "eventVersion": "1.0", "eventTimestamp": 1686975103470, "isFinal": True,
    "originationPhoneNumber": "+12065550152", "destinationPhoneNumber": "+14255550156", "isInternationalSend": False,
    "mcc": "310", "mnc": "800", "messageId": "862a8790-60c0-4430-9b2b-658bdexample",
    "messageRequestTimestamp": 1686975103170, "messageEncoding": "GSM", "messageType": "PROMOTIONAL",
    "messageStatus": "SUCCESSFUL", "messageStatusDescription": "Message has been accepted by phone carrier",
    "context": {"account": "bar"}, "totalMessageParts": 1, "totalMessagePrice": 0.09582, "totalCarrierFee": 0.0,
}
SENDER_ID_EVENT = {  # the `detail` of the EventBridge example: an alphanumeric sender id, a carrier name
    "eventType": "TEXT_SUCCESSFUL", "eventVersion": "1.0", "eventTimestamp": 1759342841377, "isFinal": True,
    "originationPhoneNumber": "VAJZNBLLDX", "isoCountryCode": "ES", "isInternationalSend": False, "mcc": "214",
    "mnc": "05", "carrierName": "Movistar", "messageId": "ed23196c-75ce-4727-93ee-7bf72b64998f",
    "messageRequestTimestamp": 1759342840978, "messageEncoding": "GSM", "messageType": "TRANSACTIONAL",
    "messageStatus": "SUCCESSFUL", "destinationPhoneNumber": "+34600000000", "totalMessageParts": 1,
}
TWO_WAY = {  # the user guide's two-way SMS payload
    "originationNumber": "+14255550182", "destinationNumber": "+12125550101", "messageKeyword": "JOIN",
    "messageBody": "EXAMPLE", "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
    "previousPublishedMessageId": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def make_signer(common_name: str = "sns.amazonaws.com") -> tuple[rsa.RSAPrivateKey, bytes]:
    """A fresh RSA key and a self-signed certificate for it, valid around now."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, certificate.public_bytes(serialization.Encoding.PEM)


KEY, CERT_PEM = make_signer()
OTHER_KEY, _ = make_signer()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def sign(envelope: dict, key=KEY, version: str = "1") -> dict:
    """Sign an envelope as SNS does, with the documented string to sign."""
    text = "".join(f"{name}\n{envelope[name]}\n" for name in SIGNED[envelope["Type"]] if name in envelope)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(text.encode(), padding.PKCS1v15(), algorithm)
    return dict(envelope, SignatureVersion=version, Signature=base64.b64encode(signature).decode())


def notification(message: dict | str, key=KEY, version: str = "1", signed_at: float | None = None, **extra) -> dict:
    """A signed SNS Notification carrying `message`."""
    envelope = {
        "Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", "TopicArn": TOPIC,
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": iso(time.time() if signed_at is None else signed_at), "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + TOPIC + ":1",
        **extra,
    }
    return sign(envelope, key, version)


def confirmation(subscribe_url: str = SUBSCRIBE_URL, **extra) -> dict:
    """A signed SubscriptionConfirmation."""
    envelope = {
        "Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e2425dacbba3b1ac6cf6fd", "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.\nTo confirm the subscription, visit the "
                   "SubscribeURL included in this message.",
        "SubscribeURL": subscribe_url, "Timestamp": iso(time.time()), "SigningCertURL": CERT_URL, **extra,
    }
    return sign(envelope)


class FakeSns:
    """Serves the test certificate and takes confirmations; counts every GET."""

    def __init__(self, certificate: bytes = CERT_PEM, failure: aws_sms.FetchFailed | None = None):
        self.certificate, self.failure, self.calls = certificate, failure, []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        if self.failure is not None:
            raise self.failure
        return self.certificate if url.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"


@pytest.fixture
def sns(monkeypatch) -> FakeSns:
    fake = FakeSns()
    monkeypatch.setattr(aws_sms, "SNS_HTTP", aws_sms.SnsHttp(fetch=fake))
    return fake


@pytest.fixture
def signed_client(make_client, sns):
    return make_client(vendors={"aws_sms": {"auth": [{"scheme": "sns_signature"}]}})


def post(client, path: str, envelope: dict, content_type: str = "text/plain; charset=UTF-8", **headers):
    headers.setdefault("x-amz-sns-message-type", envelope.get("Type", ""))
    return client.post(path, data=json.dumps(envelope, indent=2), content_type=content_type, headers=headers)


@pytest.mark.parametrize("version", ["1", "2"])
def test_documented_sms_event_becomes_a_signed_receipt(signed_client, published, version):
    response = post(signed_client, RECEIPTS, notification(SMS_EVENT, version=version))
    assert response.status_code == 200, response.get_json()
    [record] = published.records("sms.delivery-receipts")
    assert record.key == b"aws_sms:862a8790-60c0-4430-9b2b-658bdexample"
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.status, receipt.vendor_status, receipt.signature_valid) == ("delivered", "TEXT_SUCCESSFUL", True)
    assert (receipt.recipient, receipt.sender, receipt.network, receipt.parts) == ("14255550156", "12065550152",
                                                                                   "310800", 1)
    assert (receipt.price, receipt.currency) == ("0.09582", "USD")
    assert receipt.occurred_at == datetime(2023, 6, 17, 4, 11, 43, 470000, tzinfo=UTC)
    assert receipt.error_description is None
    assert receipt.raw["message"] == SMS_EVENT and receipt.raw["payload"]["TopicArn"] == TOPIC


def test_alphanumeric_sender_and_upper_case_id(signed_client, published):
    event = dict(SENDER_ID_EVENT, messageId=SENDER_ID_EVENT["messageId"].upper())
    assert post(signed_client, RECEIPTS, notification(event)).status_code == 200
    [receipt] = [e.payload for e in published.events("sms.delivery-receipts")]
    assert (receipt.sender, receipt.network, receipt.message_id) == ("VAJZNBLLDX", "21405",
                                                                     "ed23196c-75ce-4727-93ee-7bf72b64998f")


@pytest.mark.parametrize(("event_type", "is_final", "expected"), [
    ("TEXT_DELIVERED", True, "delivered"),
    ("TEXT_SUCCESSFUL", False, "pending"),  # the carrier took it; a handset receipt may follow
    ("TEXT_QUEUED", False, "pending"),
    ("TEXT_PENDING", False, "pending"),
    ("TEXT_BLOCKED", True, "rejected"),
    ("TEXT_CARRIER_BLOCKED", True, "rejected"),
    ("TEXT_SPAM", True, "rejected"),
    ("TEXT_INVALID", True, "rejected"),
    ("TEXT_INVALID_MESSAGE", True, "rejected"),
    ("TEXT_PROTECT_BLOCKED", True, "rejected"),
    ("TEXT_TTL_EXPIRED", True, "expired"),
    ("TEXT_CARRIER_UNREACHABLE", True, "failed"),
    ("TEXT_UNREACHABLE", True, "failed"),
    ("TEXT_UNKNOWN", True, "unknown"),
    ("TEXT_SOMETHING_NEW", True, "unknown"),
    ("MEDIA_DELIVERED", True, "delivered"),
])
def test_event_types_map_to_our_statuses(signed_client, published, event_type, is_final, expected):
    event = dict(SMS_EVENT, eventType=event_type, isFinal=is_final, messageStatusDescription="Phone is off")
    assert post(signed_client, RECEIPTS, notification(event)).status_code == 200
    [receipt] = [e.payload for e in published.events("sms.delivery-receipts")]
    assert receipt.status == expected
    assert receipt.error_description == (None if expected in {"delivered", "pending"} else "Phone is off")


def test_older_pinpoint_price_in_millicents(signed_client, published):
    event = {k: v for k, v in SMS_EVENT.items() if k != "totalMessagePrice"} | {"priceInMillicentsUSD": 645.0}
    assert post(signed_client, RECEIPTS, notification(event)).status_code == 200
    [receipt] = [e.payload for e in published.events("sms.delivery-receipts")]
    assert (receipt.price, receipt.currency) == ("0.00645", "USD")


def test_documented_two_way_message_becomes_an_inbound_message(signed_client, published):
    response = post(signed_client, INBOUND, notification(TWO_WAY))
    assert response.status_code == 200, response.get_json()
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"14255550182"
    [message] = [e.payload for e in published.events("sms.inbound-messages")]
    assert (message.message_id, message.from_, message.to) == ("cae173d2-66b9-564c-8309-21f858e9fb84",
                                                               "14255550182", "12125550101")
    assert (message.text, message.keyword, message.in_reply_to) == ("EXAMPLE", "JOIN",
                                                                    TWO_WAY["previousPublishedMessageId"])
    assert message.signature_valid is True and message.occurred_at is not None


def test_sns_message_id_stands_in_for_a_missing_inbound_id(signed_client, published):
    message = {k: v for k, v in TWO_WAY.items() if k != "inboundMessageId"}
    assert post(signed_client, INBOUND, notification(message)).status_code == 200
    [inbound] = [e.payload for e in published.events("sms.inbound-messages")]
    assert inbound.message_id == "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"


@pytest.mark.parametrize(("path", "message"), [(RECEIPTS, TWO_WAY), (INBOUND, SMS_EVENT),
                                               (RECEIPTS, dict(SMS_EVENT, eventType="VOICE_COMPLETED"))])
def test_a_topic_of_the_other_kind_is_refused_and_kept(signed_client, published, path, message):
    response = post(signed_client, path, notification(message))
    assert response.status_code == 403
    assert response.get_json()["code"] == "unknown_callback_type"
    [rejected] = published.rejected()
    assert json.loads(rejected["body"])["Message"] == json.dumps(message)


@pytest.mark.parametrize(("path", "message", "field"), [
    (RECEIPTS, {k: v for k, v in SMS_EVENT.items() if k != "messageId"}, "messageId"),
    (RECEIPTS, {k: v for k, v in SMS_EVENT.items() if k != "eventType"}, "eventType"),
    (INBOUND, {k: v for k, v in TWO_WAY.items() if k != "originationNumber"}, "originationNumber"),
    (INBOUND, {k: v for k, v in TWO_WAY.items() if k != "messageBody"}, "messageBody"),
])
def test_a_message_without_an_essential_field_is_a_400(signed_client, published, path, message, field):
    response = post(signed_client, path, notification(message))
    assert response.status_code == 400
    assert field in response.get_json()["errors"]["Message"]
    assert published.rejected()


def test_a_message_that_is_not_json_is_a_400(signed_client):
    response = post(signed_client, RECEIPTS, notification("Hello world!"))
    assert response.status_code == 400
    assert "Message" in response.get_json()["errors"]


def test_described_fields_out_of_shape_are_parse_warnings(signed_client, published):
    event = dict(SMS_EVENT, eventTimestamp="yesterday", totalMessagePrice="free", mcc="3x0")
    assert post(signed_client, RECEIPTS, notification(event)).status_code == 200
    [receipt] = [e.payload for e in published.events("sms.delivery-receipts")]
    assert {w["field"] for w in receipt.parse_warnings} == {"eventTimestamp", "totalMessagePrice", "mcc"}
    assert (receipt.occurred_at, receipt.price, receipt.network) == (None, None, None)


def test_json_content_type_is_taken_too_and_others_are_415(signed_client):
    assert post(signed_client, RECEIPTS, notification(SMS_EVENT), content_type="application/json").status_code == 200
    assert post(signed_client, RECEIPTS, notification(SMS_EVENT), content_type="text/html").status_code == 415


def test_subscription_is_confirmed_after_the_signature_and_certificates_are_cached(signed_client, sns):
    response = post(signed_client, RECEIPTS, confirmation())
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["event_ids"] == []
    assert sns.calls == [CERT_URL, SUBSCRIBE_URL]
    assert post(signed_client, RECEIPTS, notification(SMS_EVENT)).status_code == 200
    assert sns.calls.count(CERT_URL) == 1  # fetched once, then from the cache


def test_unsubscribe_confirmation_is_acknowledged_without_an_event(signed_client, sns):
    envelope = sign(dict(confirmation(), Type="UnsubscribeConfirmation"))
    response = post(signed_client, RECEIPTS, envelope)
    assert response.status_code == 200 and response.get_json()["event_ids"] == []
    assert SUBSCRIBE_URL not in sns.calls  # an unsubscription is never re-confirmed


def test_unverified_confirmation_is_kept_for_an_operator_not_confirmed(make_client, published, sns):
    client = make_client(vendors={"aws_sms": {"auth": [{"scheme": "url_token", "token": "t0ken-aws"}]}})
    response = post(client, RECEIPTS + "/t0ken-aws", confirmation())
    assert response.status_code == 403
    assert response.get_json()["code"] == "sns_subscription_not_confirmed"
    assert sns.calls == []
    [rejected] = published.rejected()
    assert json.loads(rejected["body"])["SubscribeURL"] == SUBSCRIBE_URL
    assert "t0ken-aws" not in rejected["path"]


@pytest.mark.parametrize(("failure", "status"), [(aws_sms.FetchFailed("URLError", transient=True), 503),
                                                 (aws_sms.FetchFailed("HTTP 404", transient=False), 401)])
def test_certificate_fetch_failures(make_client, monkeypatch, failure, status):
    monkeypatch.setattr(aws_sms, "SNS_HTTP", aws_sms.SnsHttp(fetch=FakeSns(failure=failure)))
    client = make_client(vendors={"aws_sms": {"auth": [{"scheme": "sns_signature"}]}})
    response = post(client, RECEIPTS, notification(SMS_EVENT))
    assert response.status_code == status
    if status == 503:
        assert response.headers["Retry-After"]


def test_confirmation_fetch_failure_asks_sns_to_retry(signed_client, sns):
    sns.failure = None
    post(signed_client, RECEIPTS, notification(SMS_EVENT))  # the certificate is now cached
    sns.failure = aws_sms.FetchFailed("timeout", transient=True)
    assert post(signed_client, RECEIPTS, confirmation()).status_code == 503


@pytest.mark.parametrize("case", [
    "wrong_key", "tampered_message", "stale", "foreign_cert_host", "http_cert_url", "cert_not_pem",
    "version_3", "header_mismatch", "foreign_subscribe_host", "not_sns", "unsigned",
])
def test_signature_failures_are_401_and_fetch_nothing_foreign(signed_client, sns, case):
    envelope = {
        "wrong_key": lambda: notification(SMS_EVENT, key=OTHER_KEY),
        "tampered_message": lambda: dict(notification(SMS_EVENT), Message=json.dumps(dict(SMS_EVENT, isFinal=False))),
        "stale": lambda: notification(SMS_EVENT, signed_at=time.time() - 2 * 3600),
        "foreign_cert_host": lambda: notification(
            SMS_EVENT, SigningCertURL="https://sns.us-east-1.amazonaws.com.evil.example/cert.pem"),
        "http_cert_url": lambda: notification(SMS_EVENT, SigningCertURL=CERT_URL.replace("https", "http")),
        "cert_not_pem": lambda: notification(SMS_EVENT, SigningCertURL=CERT_URL.replace(".pem", ".txt")),
        "version_3": lambda: dict(notification(SMS_EVENT), SignatureVersion="3"),
        "header_mismatch": lambda: notification(SMS_EVENT),
        "foreign_subscribe_host": lambda: confirmation("https://attacker.example/?Action=ConfirmSubscription"),
        "not_sns": lambda: SMS_EVENT,
        "unsigned": lambda: {k: v for k, v in notification(SMS_EVENT).items() if k != "Signature"},
    }[case]()
    headers = {"x-amz-sns-message-type": "SubscriptionConfirmation"} if case == "header_mismatch" else {}
    response = post(signed_client, RECEIPTS, envelope, **headers)
    assert response.status_code == 401, response.get_json()
    assert all(url == CERT_URL for url in sns.calls)  # nothing but SNS's own certificate URL is ever fetched


def test_custom_host_pattern_allows_another_endpoint(make_client, sns, published):
    client = make_client(vendors={"aws_sms": {"auth": [
        {"scheme": "sns_signature", "host_pattern": r"^sns\.internal\.example$"}]}})
    local_cert = "https://sns.internal.example/cert.pem"
    assert post(client, RECEIPTS, notification(SMS_EVENT, SigningCertURL=local_cert)).status_code == 200
    assert post(client, RECEIPTS, notification(SMS_EVENT)).status_code == 401  # the default hosts no longer


def test_topic_arn_must_be_one_we_subscribed_to(make_client, sns, published):
    client = make_client(vendors={"aws_sms": {"auth": [{"scheme": "sns_signature"}],
                                              "account_ids": ["arn:aws:sns:us-east-1:123456789012:other"]}})
    response = post(client, RECEIPTS, confirmation())
    assert response.status_code == 403 and response.get_json()["code"] == "unknown_account"
    assert SUBSCRIBE_URL not in sns.calls  # a foreign topic's subscription is never confirmed


def test_string_to_sign_is_the_documented_one():
    message = {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:t", "Subject": "My First Message",
               "Message": "Hello world!", "Timestamp": "2012-05-02T00:54:06.655Z", "SignatureVersion": "1"}
    assert aws_sms.string_to_sign(message) == (
        b"Message\nHello world!\nMessageId\nm-1\nSubject\nMy First Message\nTimestamp\n2012-05-02T00:54:06.655Z\n"
        b"TopicArn\narn:t\nType\nNotification\n")
    assert b"Subject" not in aws_sms.string_to_sign({**message, "Subject": None})


def test_sns_signature_settings():
    settings = load_settings(overrides={"vendors": {"aws_sms": {"auth": [{"scheme": "sns_signature"}]}}})
    [scheme] = settings.vendor("aws_sms").auth
    assert scheme.tolerance_seconds == 3900  # SNS retries for up to an hour with the same Timestamp
    with pytest.raises(ConfigError, match="host_pattern"):
        load_settings(overrides={"vendors": {"aws_sms": {"auth": [{"scheme": "sns_signature", "host_pattern": "("}]}}})
    with pytest.raises(ConfigError, match="host_pattern"):
        load_settings(overrides={"vendors": {"aws_sms": {"auth": [
            {"scheme": "url_token", "token": "t", "host_pattern": "x"}]}}})
    with pytest.raises(ConfigError, match="cannot send"):
        load_settings(overrides={"vendors": {"aws_sms": {"auth": [{"scheme": "basic", "password": "p"}]}}},
                      vendors=auth_catalog())


def test_send_text_message_response_registers_a_sent_message(client, published):
    """The SendTextMessage response shape of the AWS API reference: `{"MessageId": "..."}`; its id is the
    messageId of the events that follow, so the receipt above reconciles with it."""
    body = {"vendor": "aws_sms", "response": {"MessageId": "862A8790-60C0-4430-9B2B-658BDEXAMPLE"},
            "recipients": ["+14255550156"], "sender": "+12065550152"}
    response = client.post("/v1/sent-messages", json=body)
    assert response.status_code == 200, response.get_json()
    [record] = published.records("sms.sent-messages")
    assert record.key == b"aws_sms:862a8790-60c0-4430-9b2b-658bdexample"  # the receipts' key
    [sent] = [e.payload for e in published.events("sms.sent-messages")]
    assert (sent.recipient, sent.sender) == ("14255550156", "+12065550152")  # the sender as stated


def test_send_text_message_response_needs_its_one_recipient(client):
    body = {"vendor": "aws_sms", "response": {"MessageId": "862a8790-60c0-4430-9b2b-658bdexample"}}
    response = client.post("/v1/sent-messages", json=body)
    assert response.status_code == 400
    assert "recipients" in response.get_json()["errors"]
