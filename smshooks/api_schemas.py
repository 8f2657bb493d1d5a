"""The read API's answers as marshmallow schemas, for the OpenAPI document (tests hold them to the real answers)."""

from __future__ import annotations

from marshmallow import Schema, fields

from processors.reports.reconciliation import METRICS


def _time(description: str = "") -> fields.String:
    return fields.String(allow_none=True, metadata={"format": "date-time", "description": description})


class SentMessageView(Schema):
    """The stored sent message."""

    raw_message_id = fields.String(allow_none=True, metadata={"description": "the id as the sender gave it"})
    batch_id = fields.String(allow_none=True)
    campaign = fields.String(allow_none=True)
    client_ref = fields.String(allow_none=True)
    recipient = fields.String(metadata={"description": "digits only"})
    sender = fields.String(allow_none=True)
    parts = fields.Integer(allow_none=True)
    country = fields.String(allow_none=True, metadata={"description": "ISO 3166 alpha-2, from the calling code"})
    account = fields.String(allow_none=True)
    sent_at = _time()
    received_at = _time()
    status = fields.String(metadata={"description": "submitted, pending, unknown or a final status"})
    status_changed_at = _time()
    final_at = _time()
    first_receipt_received_at = _time()
    delivered_at = _time()
    conflict = fields.Boolean()
    price = fields.String(allow_none=True, metadata={"description": "reported cost of every part, a decimal string"})
    currency = fields.String(allow_none=True, metadata={"description": "ISO 4217 currency of price"})
    expected_price = fields.String(allow_none=True, metadata={"description": "what the sender expected"})
    expected_currency = fields.String(allow_none=True)
    part_statuses = fields.List(fields.Dict(), metadata={
        "description": "per registered part: part, message_id, status, price, currency (multipart messages)"})


class ReceiptView(Schema):
    """One receipt of a message's history and what reconciliation did with it."""

    event_id = fields.String()
    status = fields.String()
    vendor_status = fields.String(allow_none=True)
    vendor_code = fields.String(allow_none=True)
    occurred_at = _time("the vendor's time, when it gave one")
    received_at = _time("our receive time")
    outcome = fields.String(metadata={"description": "applied, duplicate, stale, conflict or parked"})
    previous_status = fields.String(allow_none=True)
    parked = fields.Boolean()


class ClickView(Schema):
    """One click on the message's short link."""

    url = fields.String()
    clicked_at = _time()
    received_at = _time()
    country = fields.String(allow_none=True)
    event_id = fields.String()


class MessageView(Schema):
    """`GET /v1/messages/{vendor}/{message_id}`."""

    vendor = fields.String()
    message_id = fields.String(metadata={"description": "normalized as the vendor's receipts carry it"})
    matched = fields.Boolean(metadata={"description": "false while receipts wait (parked) for their send"})
    sent_message = fields.Nested(SentMessageView, allow_none=True)
    status = fields.String(allow_none=True)
    conflict = fields.Boolean()
    receipts = fields.List(fields.Nested(ReceiptView))
    conflicts = fields.List(fields.Nested(ReceiptView))
    clicks = fields.List(fields.Nested(ClickView))


class OptOutHistoryView(Schema):
    """One consent signal: a keyword the subscriber sent, or a vendor's refusal because they opted out."""

    action = fields.String(metadata={"description": "opt_out, opt_in or help"})
    keyword = fields.String(allow_none=True, metadata={"description": "the keyword, or <vendor>:<code> of a refusal"})
    text = fields.String(allow_none=True)
    changed = fields.Boolean(metadata={"description": "whether it changed the consent"})
    source = fields.String(metadata={"description": "keyword (the subscriber wrote it) or vendor (a vendor refusal)"})
    evidence = fields.String(allow_none=True, metadata={"description": "a refusal's vendor, message, code, meaning"})
    vendor = fields.String(allow_none=True)
    received_at = _time()
    source_event_id = fields.String(allow_none=True)


class OptOutView(Schema):
    """`GET /v1/opt-outs/{msisdn}`."""

    msisdn = fields.String()
    scope = fields.String(metadata={"description": "sender or account"})
    sender = fields.String(allow_none=True)
    opted_out = fields.Boolean()
    keyword = fields.String(allow_none=True)
    changed_at = _time()
    source_event_id = fields.String(allow_none=True)
    history = fields.List(fields.Nested(OptOutHistoryView))


class ConsentEntryView(OptOutHistoryView):
    """One entry of a number's consent history, for any sender."""

    occurred_at = _time()
    msisdn = fields.String()
    scope = fields.String(metadata={"description": "sender or account"})
    sender = fields.String(allow_none=True, metadata={"description": "our number; null for account-wide"})


class ConsentHistoryView(Schema):
    """`GET /v1/opt-outs/{msisdn}/history`."""

    msisdn = fields.String()
    history = fields.List(fields.Nested(ConsentEntryView))


class ReportRangeView(Schema):
    """What every report answers with first: the range [from, to) it covers."""

    from_ = fields.String(data_key="from", metadata={"format": "date-time"})
    to = fields.String(metadata={"format": "date-time"})


class ComplianceReportView(ReportRangeView):
    """`GET /v1/reports/opt-outs?format=json`."""

    report = fields.String(metadata={"example": "opt-outs"})
    now = fields.String(metadata={"format": "date-time"})
    scope = fields.String()
    grace_business_days = fields.Integer()
    totals = fields.Dict(metadata={"description": "opt-outs, honoured, violated within/beyond grace, messages after"})
    opt_outs = fields.Dict(metadata={"description": "{total, limit, items}: each opt-out and its time to honour"})
    sent_after_opt_out = fields.Dict(metadata={"description": "{total, limit, items}: messages sent after opt-out"})


class CostReportView(ReportRangeView):
    """`GET /v1/reports/costs?format=json`: amounts are decimal strings, never summed across currencies."""

    report = fields.String(metadata={"example": "costs"})
    now = fields.String(metadata={"format": "date-time"})
    group_by = fields.List(fields.String())
    columns = fields.List(fields.String())
    rows = fields.List(fields.Dict(), metadata={"description": "one object per (group, currency)"})
    totals = fields.List(fields.Dict(), metadata={"description": "one object per currency"})
    differing_messages = fields.Dict(metadata={"description": "{total, limit, items}: reported price != expected"})


class FailureReportView(ReportRangeView):
    """`GET /v1/reports/failures?format=json`."""

    report = fields.String(metadata={"example": "failures"})
    top = fields.Integer()
    vendors = fields.List(fields.Dict(), metadata={
        "description": "per vendor: failed_messages, other_messages and reasons [{rank, code, description, statuses, "
                       "messages, share_of_failures}]; an undescribed code reads 'unknown code'"})


class SuppressionRowView(Schema):
    """One subscriber of the suppression list."""

    msisdn = fields.String()
    scope = fields.String()
    sender = fields.String(allow_none=True)
    opted_out_at = _time()
    keyword = fields.String(allow_none=True)
    source_event_id = fields.String(allow_none=True)


class ReportView(ReportRangeView):
    """`GET /v1/reports/reconciliation?format=json`."""

    report = fields.String(metadata={"example": "reconciliation"})
    now = fields.String(metadata={"format": "date-time"})
    group_by = fields.List(fields.String())
    settings = fields.Dict(metadata={"description": "the ages the report used (missing/unmatched hours)"})
    columns = fields.List(fields.String(), metadata={"description": "group columns, then " + ", ".join(METRICS)})
    rows = fields.List(fields.Dict(), metadata={"description": "one object per group, keyed by `columns`"})
    totals = fields.Dict(metadata={"description": "the metrics over the whole range"})
    delivery_rate_by_day = fields.List(fields.Dict())
    time_to_delivery_histogram = fields.List(fields.Dict())
    missing_receipts = fields.List(fields.Dict(), metadata={"description": "sent messages past their age"})
    unmatched_receipts = fields.List(fields.Dict(), metadata={"description": "receipts parked past their age"})


VIEWS = {"MessageView": MessageView, "OptOutView": OptOutView, "SuppressionRowView": SuppressionRowView,
         "ReportView": ReportView, "ConsentHistoryView": ConsentHistoryView,
         "ComplianceReportView": ComplianceReportView, "FailureReportView": FailureReportView,
         "CostReportView": CostReportView}
