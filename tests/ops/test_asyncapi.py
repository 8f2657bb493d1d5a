"""docs/asyncapi.yaml covers every topic of the contract, and real sample events validate against it."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml

from core import events as contract
from core.events import Envelope

DOC = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml").read_text())
NOW = datetime(2024, 3, 5, 10, 15, 42, tzinfo=UTC)
TOPICS = {name: value for name, value in vars(contract).items() if name.startswith("TOPIC_")}

SAMPLES = [
    contract.DeliveryReceipt(vendor="sinch", message_id="01HX:447700900123", status="delivered",
                             vendor_status="Delivered", received_at=NOW, occurred_at=NOW, recipient="447700900123",
                             parts=2, signature_valid=True, raw={"format": "json", "payload": {"x": 1}},
                             parse_warnings=({"field": "price", "reason": "not a decimal"},)),
    contract.DeliveryReceipt(vendor="generic", message_id="m1", status="pending", vendor_status="queued",
                             received_at=NOW),
    contract.InboundMessage(vendor="generic", message_id="in-1", from_="447700900123", to="60777", received_at=NOW,
                            text="STOP", media=({"url": "https://example.com/a.png"},), concat={"part": 1}),
    contract.LinkClick(vendor="mobivate", message_id="abc", recipient="447700900123", url="https://ex.am/p",
                       received_at=NOW, clicked_at=NOW, ip_address="203.0.113.5"),
    contract.SentMessage(vendor="fortytwo", message_id="42", recipient="447700900123", sent_at=NOW, received_at=NOW,
                         campaign_id="spring"),
    contract.MessageStatus(vendor="generic", message_id="m1", status="delivered", previous_status="submitted",
                           is_final=True, conflict=False, receipt_event_id="e1", changed_at=NOW, received_at=NOW),
    contract.OptOut(msisdn="447700900123", scope="sender", sender="60777", action="opt_out", keyword="STOP",
                    source_event_id="e2", occurred_at=NOW, received_at=NOW, vendor="generic", opted_out=True),
]


def resolve(ref: str) -> dict:
    node = DOC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def message_for(ce_type: str) -> dict:
    """The component message whose ce_type header is this type."""
    for message in DOC["components"]["messages"].values():
        if message["headers"]["properties"].get("ce_type", {}).get("const") == ce_type:
            return message
    raise AssertionError(f"no message for {ce_type}")


def validator(schema: dict) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_is_asyncapi_3_with_every_topic_and_the_dlq_convention():
    assert DOC["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in DOC["channels"].values()}
    assert set(TOPICS.values()) <= addresses, set(TOPICS.values()) - addresses
    assert "{topic}.dlq" in addresses
    for operation in DOC["operations"].values():
        channel = resolve(operation["channel"]["$ref"])
        for message in operation["messages"]:
            assert resolve(message["$ref"]) is not None
        assert channel["address"]


@pytest.mark.parametrize("payload_type", list(contract.PAYLOAD_TYPES.values()), ids=lambda cls: cls.__name__)
def test_schema_fields_match_the_dataclass(payload_type):
    schema = resolve(message_for(payload_type.ce_type)["payload"]["$ref"])
    fields = {field.name for field in dataclasses.fields(payload_type)}
    if payload_type is contract.DeliveryReceipt:
        fields.add("is_final")
    assert set(schema["properties"]) == fields


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: f"{type(p).__name__}-{p.key()}")
def test_sample_events_validate(payload):
    envelope = Envelope.wrap(payload)
    message = message_for(envelope.type)
    validator(resolve(message["payload"]["$ref"])).validate(json.loads(envelope.value()))
    validator(message["headers"]).validate({name: value.decode() for name, value in envelope.headers()})
    assert payload.topic in {resolve(ref["$ref"])["address"] for ref in _channels_of(message)}


def _channels_of(message: dict) -> list[dict]:
    return [{"$ref": f"#/channels/{name}"} for name, channel in DOC["channels"].items()
            if any(ref["$ref"].endswith("/" + message["name"]) for ref in channel["messages"].values())]


def test_an_off_contract_event_fails_validation():
    data = json.loads(Envelope.wrap(SAMPLES[0]).value())
    data["status"] = "arrived"
    schema = resolve(message_for("sms.delivery_receipt.v1")["payload"]["$ref"])
    with pytest.raises(jsonschema.ValidationError):
        validator(schema).validate(data)


def test_rejected_record_validates():
    key, headers, value = contract.rejected_record(
        request_id="req-12345678", vendor="generic", kind="delivery-receipts", status=400,
        code="syntax_invalid_json", text="bad", method="POST", path="/v1/callbacks/generic/delivery-receipts",
        query="", content_type="application/json", headers={"Host": "x"}, body_base64="e25vdA==",
        truncated=False, received_at=NOW, errors=None,
    )
    message = message_for("sms.callback_rejected.v1")
    validator(resolve(message["payload"]["$ref"])).validate(json.loads(value))
    validator(message["headers"]).validate({name: raw.decode() for name, raw in headers})
