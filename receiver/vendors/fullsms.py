"""FullSMS: a send API only (campaign responses with no per-recipient ids); it calls back with nothing we serve."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from core.events import SentMessage, digits_msisdn
from receiver.fields import StrictInteger
from receiver.vendors.base import VendorAdapter, shared_schema
from receiver.vendors.sending import sent_message, stated


class FullSmsInvalidSchema(Schema):
    """FullSMS's `invalid` block: numbers it refused."""

    class Meta:
        unknown = INCLUDE

    numbers = fields.List(fields.String(), load_default=list)



class FullSmsCampaignSchema(Schema):
    """FullSMS's campaign response: a campaign id and a count, nothing per recipient."""

    class Meta:
        unknown = INCLUDE

    status = fields.String(validate=validate.Length(max=64))
    campaign_id = fields.String(required=True, validate=validate.Length(1, 128))
    total_sent = StrictInteger(validate=validate.Range(min=0))
    invalid = fields.Nested(FullSmsInvalidSchema, allow_none=True)



def send_response(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """FullSMS's campaign response has no per-recipient ids: the caller lists recipients, we derive ids."""
    campaign = shared_schema(FullSmsCampaignSchema).load(item["response"])
    if not wrapper.get("recipients"):
        raise ValidationError({"recipients": ["Required with a FullSMS response, which names no recipients."]})
    refused = {digits_msisdn(n) for n in (campaign.get("invalid") or {}).get("numbers", [])}
    recipients = [r for r in wrapper["recipients"] if digits_msisdn(r) not in refused]  # FullSMS refused these
    if not recipients:
        raise ValidationError({"recipients": ["FullSMS refused every recipient."]})
    return [
        sent_message(
            "fullsms", f"{campaign['campaign_id']}:{digits_msisdn(recipient)}", recipient, received_at,
            dict(item, recipients=[recipient]), batch_id=campaign["campaign_id"],
            **{"campaign_id": campaign["campaign_id"], **stated(wrapper)},
        )
        for recipient in recipients
    ]


ADAPTER = VendorAdapter(
    name="fullsms",
    docs="https://api.fullsms.com/api/documentation.openapi",
    send_response=send_response,  # no callbacks: its receipts are not served, its sends still register
)
