"""Twilio callbacks as recorded by other integrations and Twilio's docs, through the real app and broker.

Fixtures: nyaruka/courier handlers/twiml/handlers_test.go (form bodies receiveValid, receiveMedia with relative
MediaUrl0=cat.jpg and no MediaContentType, waReceiveValid and waReceiveFromBSUID with `whatsapp:` addresses,
tmsReceiveExtra to a short code, statusStop with ErrorCode=21610, statusRead, statusInvalid `huh`, tmsStatusExtra);
Twilio's changelog of 2023-02-14 (RawDlrDoneDate, YYMMDDhhmm on delivered/undelivered) and its status callback
guide (AccountSid, From, MessageSid, MessageStatus, SmsSid, SmsStatus; ChannelPrefix and `read` on WhatsApp;
`messenger:` and `rcs:` addresses on other channels).

Where channel addresses go: a receipt's `recipient` is the digits (sent messages are matched on them) and its
`sender` is Twilio's From as written; an inbound message's `from` keeps the channel (`whatsapp:+14133881111`) since the
same digits on another channel are another subscriber conversation, and its `to` (our number) is the digits.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

RECEIPTS = "/v1/callbacks/twilio/delivery-receipts"
INBOUND = "/v1/callbacks/twilio/inbound-messages"
FORM = "application/x-www-form-urlencoded"
SID = "SMe287d7109a5a925f182f0e07fe5b223b"

RECEIVE_VALID = (
    "ToCountry=US&ToState=District+Of+Columbia&SmsMessageSid=SMe287d7109a5a925f182f0e07fe5b223b&NumMedia=0&ToCity="
    "&FromZip=01022&SmsSid=SMe287d7109a5a925f182f0e07fe5b223b&FromState=MA&SmsStatus=received&FromCity=CHICOPEE"
    "&Body=Msg&FromCountry=US&To=%2B12028831111&ToZip=&NumSegments=1&MessageSid=SMe287d7109a5a925f182f0e07fe5b223b"
    "&AccountSid=acctid&From=%2B14133881111&ApiVersion=2010-04-01"
)
RECEIVE_MEDIA = (
    "ToCountry=US&ToState=District+Of+Columbia&SmsMessageSid=SMe287d7109a5a925f182f0e07fe5b223b&NumMedia=2&ToCity="
    "&FromZip=01022&SmsSid=SMe287d7109a5a925f182f0e07fe5b223b&FromState=MA&SmsStatus=received&FromCity=CHICOPEE"
    "&FromCountry=US&To=%2B12028831111&ToZip=&NumSegments=1&MessageSid=SMe287d7109a5a925f182f0e07fe5b223b"
    "&AccountSid=acctid&From=%2B14133881111&ApiVersion=2010-04-01&MediaUrl0=cat.jpg&MediaUrl1=dog.jpg"
)
WA_RECEIVE_VALID = RECEIVE_VALID.replace("To=%2B", "To=whatsapp:%2B").replace("From=%2B", "From=whatsapp:%2B")
WA_RECEIVE_FROM_BSUID = WA_RECEIVE_VALID.replace("From=whatsapp:%2B14133881111",
                                                 "From=whatsapp:US.1234&ExternalUserId=whatsapp:US.1234")
TMS_RECEIVE_EXTRA = (
    "ToCountry=US&ToState=&SmsMessageSid=SMbbf29aeb9d380ce2a1c0ae4635ff9dab&NumMedia=0&ToCity=&FromZip=27609"
    "&SmsSid=SMbbf29aeb9d380ce2a1c0ae4635ff9dab&FromState=NC&SmsStatus=received&FromCity=RALEIGH&Body=John+Cruz"
    "&FromCountry=US&To=384387&ToZip=&NumSegments=1&MessageSid=SMbbf29aeb9d380ce2a1c0ae4635ff9dab&AccountSid=acctid"
    "&From=%2B14133881111&ApiVersion=2010-04-01"
)
STATUS_STOP = "ErrorCode=21610&MessageSid=SMe287d7109a5a925f182f0e07fe5b223b&MessageStatus=failed&To=%2B12028831111"
TMS_STATUS_EXTRA = (
    "SmsStatus=sent&MessageStatus=sent&To=2021&MessagingServiceSid=MGdb23ec0f89ee2632e46e91d8128f5e2b"
    "&MessageSid=SM0b6e2697aae04182a9f5b5c7a8994c7f&AccountSid=acctid&From=%2B14133881111&ApiVersion=2010-04-01"
)


def post(client, path: str, body: str):
    return client.post(path, data=body, content_type=FORM)


def test_courier_receive_valid_keeps_every_field_in_raw(client, published):
    response = post(client, INBOUND, RECEIVE_VALID)
    assert response.status_code == 200 and response.get_data(as_text=True).endswith("<Response/>")
    [event] = published.events("sms.inbound-messages")
    message = event.payload
    assert (message.message_id, message.from_, message.to, message.text) == (SID, "14133881111", "12028831111", "Msg")
    assert message.raw["payload"]["FromCity"] == "CHICOPEE" and message.raw["payload"]["ToCity"] == ""
    assert message.parse_warnings == ()


def test_courier_receive_media_with_relative_urls_and_no_body(client, published):
    assert post(client, INBOUND, RECEIVE_MEDIA).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert event.payload.media == ({"url": "cat.jpg", "content_type": None}, {"url": "dog.jpg", "content_type": None})
    assert event.payload.text == ""


def test_whatsapp_sender_keeps_its_channel_and_our_number_is_digits(client, published):
    assert post(client, INBOUND, WA_RECEIVE_VALID).status_code == 200
    [record] = published.records("sms.inbound-messages")
    assert record.key == b"whatsapp:+14133881111"
    [event] = published.events("sms.inbound-messages")
    assert (event.payload.from_, event.payload.to) == ("whatsapp:+14133881111", "12028831111")


def test_whatsapp_business_scoped_user_id_is_a_sender(client, published):
    assert post(client, INBOUND, WA_RECEIVE_FROM_BSUID).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert event.payload.from_ == "whatsapp:US.1234"
    assert event.payload.raw["payload"]["ExternalUserId"] == "whatsapp:US.1234"


@pytest.mark.parametrize("sender", ["messenger:1234567890123456", "rcs:+14133881111",
                                    "rcs:acme_brand_agent_0123456789abcdef_agent"])
def test_other_channel_senders(client, published, sender):
    body = RECEIVE_VALID.replace("From=%2B14133881111", f"From={quote(sender, safe=':')}")
    assert post(client, INBOUND, body).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert event.payload.from_ == sender


def test_short_code_recipient(client, published):
    assert post(client, INBOUND, TMS_RECEIVE_EXTRA).status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert (event.payload.to, event.payload.text) == ("384387", "John Cruz")


def test_courier_status_stop_keeps_the_error_code(client, published):
    assert post(client, RECEIPTS, STATUS_STOP).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.status, receipt.vendor_code, receipt.recipient) == ("failed", "21610", "12028831111")


@pytest.mark.parametrize(
    ("word", "status"),
    [("read", "delivered"), ("huh", "unknown"), ("partially_delivered", "unknown"), ("canceled", "failed"),
     ("scheduled", "pending"), ("accepted", "pending"), ("queued", "pending"), ("sending", "pending"),
     ("undelivered", "failed")],
)
def test_every_status_word_and_an_unknown_one_is_never_a_400(client, published, word, status):
    assert post(client, RECEIPTS, f"MessageSid={SID}&MessageStatus={word}").status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.vendor_status) == (status, word)


def test_messaging_service_status_to_a_short_code(client, published):
    assert post(client, RECEIPTS, TMS_STATUS_EXTRA).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.status, event.payload.recipient, event.payload.sender) == ("pending", "2021",
                                                                                    "+14133881111")


def test_whatsapp_read_receipt_with_channel_fields(client, published):
    body = ("ChannelPrefix=whatsapp&ApiVersion=2010-04-01&MessageStatus=read&SmsSid=SM0001&SmsStatus=read"
            "&ChannelInstallSid=XE0001&To=whatsapp%3A%2B447700900123&From=whatsapp%3A%2B14155238886"
            "&MessageSid=SM0001&AccountSid=AC0001&ChannelToAddress=%2B4477009XXXXX&EventType=READ")
    assert post(client, RECEIPTS, body).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.status, receipt.recipient, receipt.sender) == ("delivered", "447700900123",
                                                                   "whatsapp:+14155238886")
    assert receipt.raw["payload"]["EventType"] == "READ"


def test_delivered_status_with_raw_done_date_segments_price_and_error_message(client, published):
    body = (f"MessageSid={SID}&MessageStatus=undelivered&SmsStatus=undelivered&AccountSid=AC0001"
            "&From=%2B15017122661&To=%2B15558675310&ApiVersion=2010-04-01&RawDlrDoneDate=2302141530&NumSegments=2"
            "&ErrorCode=30003&ErrorMessage=Unreachable+destination+handset&Price=-0.00790&PriceUnit=USD")
    assert post(client, RECEIPTS, body).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    receipt = event.payload
    assert (receipt.status, receipt.parts, receipt.price, receipt.currency) == ("failed", 2, "-0.00790", "USD")
    assert receipt.error_description == "Unreachable destination handset"
    assert receipt.operator_done_at.isoformat() == "2023-02-14T15:30:00+00:00"


def test_incoming_message_posted_to_the_status_url_becomes_the_inbound_message(client, published):
    # the number's "A message comes in" webhook pointed at the status callback URL: a STOP must not be lost
    body = RECEIVE_VALID.replace("Body=Msg", "Body=STOP")
    response = post(client, RECEIPTS, body)
    assert response.status_code == 200
    [event] = published.events("sms.inbound-messages")
    assert (event.payload.text, event.payload.from_) == ("STOP", "14133881111")


def test_status_callback_posted_to_the_inbound_url_becomes_the_receipt(client, published):
    assert post(client, INBOUND, STATUS_STOP).status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert (event.payload.message_id, event.payload.status) == (SID, "failed")
