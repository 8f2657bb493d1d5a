"""`smshooks demo`: play a realistic mixed stream of sends, receipts, STOP replies and clicks into a running stack.

Standard library HTTP only (urllib), so the runtime image needs nothing more than the service itself.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from tqdm import tqdm

SENT_PER_REQUEST = 50
# Receipt outcomes and their weights: most messages arrive, some fail or expire, a few never get a receipt.
OUTCOMES = [("delivered", 80), ("failed", 6), ("expired", 3), ("rejected", 2), ("pending", 4), ("none", 5)]
STOP_SHARE, CLICK_SHARE = 0.03, 0.10
# Numbers reserved for drama and documentation, so the demo never texts a real phone:
# Ofcom's 07700 900xxx (GB), ARCEP's 06 39 98 xx xx (FR), ACMA's 0491 570 xxx (AU).
NUMBER_RANGES = {"GB": "447700900{:03d}", "FR": "336399800{:02d}", "AU": "61491570{:03d}"}


class Message:
    """One demo message: who sent it through which vendor, and what will happen to it."""

    def __init__(self, vendor: str, index: int, run: str, rng: random.Random, sent_at: datetime):
        self.vendor = vendor
        self.country = rng.choice(sorted(NUMBER_RANGES))
        self.recipient = NUMBER_RANGES[self.country].format(rng.randrange(100 if self.country == "FR" else 1000))
        self.sender = "60777"
        self.client_ref = f"demo-{run}-{index}"
        self.sent_at = sent_at
        self.batch_id = "01" + uuid.uuid4().hex[:24].upper()  # Sinch batch ids are ULID-like
        self.message_id = {
            "mobivate": uuid.uuid4().hex.upper(),  # Mobivate ids are 32 hex digits
            "jasmin": str(uuid.uuid4()).upper(),
            "twilio": "SM" + uuid.uuid4().hex,  # MessageSid: SM + 32 hex digits
            "vonage": uuid.uuid4().hex[:16].upper(),  # Vonage message-id: 16 hex digits
            "fortytwo": str(uuid.uuid4()),
            "sinch": f"{self.batch_id}:{self.recipient}",  # Sinch has no message id: batch + recipient
        }.get(vendor, f"demo-{run}-{index}")
        self.outcome = rng.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
        self.stop = rng.random() < STOP_SHARE
        # only vendors with a click callback (generic and Mobivate) report clicks
        self.click = rng.random() < CLICK_SHARE and self.outcome == "delivered" and vendor in {"generic", "mobivate"}

    def sent(self) -> dict:
        """Our canonical sent message for POST /v1/sent-messages."""
        return {"vendor": self.vendor, "message_id": self.message_id, "recipient": "+" + self.recipient,
                "sender": self.sender, "sent_at": _iso(self.sent_at), "campaign_id": "demo-spring",
                "client_ref": self.client_ref}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def receipt_request(message: Message, status: str, at: datetime) -> tuple[str, str, bytes | None, str | None]:
    """(method, path, body, content type) of the vendor's delivery receipt for `message`."""
    if message.vendor == "mobivate":
        vendor_status = {"delivered": "DELIVERED", "failed": "UNDELIVERED", "expired": "EXPIRED",
                         "rejected": "REJECTED", "pending": "ACCEPTED"}[status]
        body = {"deliveryMessageId": message.message_id, "clientReference": message.client_ref,
                "created": at.isoformat(timespec="milliseconds"), "status": vendor_status,
                "statusCode": 1 if status == "delivered" else 2, "parts": 1}
        return "POST", "/v1/callbacks/mobivate/delivery-receipts", json.dumps(body).encode(), "application/json"
    if message.vendor == "jasmin":
        vendor_status = {"delivered": "DELIVRD", "failed": "UNDELIV", "expired": "EXPIRED",
                         "rejected": "REJECTD", "pending": "ACCEPTD"}[status]
        stamp = at.strftime("%y%m%d%H%M")
        query = {"id": message.message_id, "message_status": vendor_status, "level": "2", "connector": "demo",
                 "id_smsc": uuid.uuid4().hex[:8].upper(), "sub": "001", "dlvrd": "001", "subdate": stamp,
                 "donedate": stamp, "err": "000", "text": "demo"}
        return "GET", "/v1/callbacks/jasmin/delivery-receipts?" + urllib.parse.urlencode(query), None, None
    if message.vendor in VENDOR_RECEIPTS:
        return VENDOR_RECEIPTS[message.vendor](message, status, at)
    body = {"message_id": message.message_id, "status": status, "occurred_at": _iso(at),
            "recipient": "+" + message.recipient, "client_ref": message.client_ref}
    return "POST", "/v1/callbacks/generic/delivery-receipts", json.dumps(body).encode(), "application/json"


def sinch_receipt(message: Message, status: str, at: datetime) -> tuple[str, str, bytes, str]:
    """Sinch's per-recipient delivery report (the shape that carries intermediate statuses and times)."""
    vendor_status = {"delivered": "Delivered", "failed": "Failed", "expired": "Expired", "rejected": "Rejected",
                     "pending": "Dispatched"}[status]
    body = {"type": "recipient_delivery_report_sms", "batch_id": message.batch_id, "recipient": message.recipient,
            "code": {"delivered": 0, "failed": 402, "expired": 406, "rejected": 408, "pending": 401}[status],
            "status": vendor_status, "at": _iso(at), "client_reference": message.client_ref}
    return "POST", "/v1/callbacks/sinch/delivery-receipts", json.dumps(body).encode(), "application/json"


def fortytwo_receipt(message: Message, status: str, at: datetime) -> tuple[str, str, bytes, str]:
    """Fortytwo's REST callback: a `data[]` bundle of SMPP statuses (here one entry)."""
    vendor_status = {"delivered": "DELIVRD", "failed": "UNDELIV", "expired": "EXPIRED", "rejected": "REJECTD",
                     "pending": "ACCEPTD"}[status]
    body = {"api_job_id": uuid.uuid4().hex, "client_job_id": message.client_ref,
            "data": [{"type": "SMS", "message_id": message.message_id, "status": vendor_status,
                      "timestamp": int(at.timestamp() * 1000), "to": message.recipient,
                      "custom_id": message.client_ref}]}
    return "POST", "/v1/callbacks/fortytwo/delivery-receipts", json.dumps(body).encode(), "application/json"


def twilio_receipt(message: Message, status: str, at: datetime) -> tuple[str, str, bytes, str]:
    """Twilio's form-encoded status callback; it has no expired or rejected, only undelivered/failed."""
    vendor_status = {"delivered": "delivered", "failed": "undelivered", "expired": "undelivered",
                     "rejected": "failed", "pending": "sent"}[status]
    form = {"MessageSid": message.message_id, "MessageStatus": vendor_status, "To": "+" + message.recipient,
            "From": message.sender, "AccountSid": "AC" + "0" * 32, "NumSegments": "1"}
    if vendor_status in {"undelivered", "failed"}:
        form["ErrorCode"] = "30003"
    return ("POST", "/v1/callbacks/twilio/delivery-receipts", urllib.parse.urlencode(form).encode(),
            "application/x-www-form-urlencoded")


def vonage_receipt(message: Message, status: str, at: datetime) -> tuple[str, str, None, None]:
    """Vonage's delivery receipt as a GET query (its default), with every field its SDKs require."""
    vendor_status = {"delivered": "delivered", "failed": "failed", "expired": "expired", "rejected": "rejected",
                     "pending": "accepted"}[status]
    query = {"msisdn": message.recipient, "to": message.sender, "network-code": "23410",
             "messageId": message.message_id, "price": "0.03330000", "status": vendor_status,
             "scts": at.strftime("%y%m%d%H%M"), "err-code": "0" if status in {"delivered", "pending"} else "2",
             "message-timestamp": at.strftime("%Y-%m-%d %H:%M:%S"), "client-ref": message.client_ref}
    return "GET", "/v1/callbacks/vonage/delivery-receipts?" + urllib.parse.urlencode(query), None, None


VENDOR_RECEIPTS = {"sinch": sinch_receipt, "fortytwo": fortytwo_receipt, "twilio": twilio_receipt,
                   "vonage": vonage_receipt}


def stop_request(message: Message, at: datetime, word: str) -> tuple[str, str, bytes, str]:
    """A STOP reply from the recipient, through the generic inbound route."""
    body = {"message_id": f"mo-{message.client_ref}", "from": "+" + message.recipient, "to": message.sender,
            "text": word, "occurred_at": _iso(at),
            "in_reply_to": message.message_id}
    return "POST", "/v1/callbacks/generic/inbound-messages", json.dumps(body).encode(), "application/json"


def click_request(message: Message, at: datetime) -> tuple[str, str, bytes, str]:
    """A click on the message's short link, through the vendor's click callback when it has one."""
    url = f"https://shop.example.com/spring?ref={message.client_ref}"
    if message.vendor == "mobivate":
        body = {"mobile": message.recipient, "messageId": message.message_id, "clientRef": message.client_ref,
                "url": url, "browser": "Chrome", "ipAddress": "203.0.113.7"}
        return "POST", "/v1/callbacks/mobivate/link-clicks", json.dumps(body).encode(), "application/json"
    body = {"message_id": message.message_id, "recipient": "+" + message.recipient, "url": url,
            "clicked_at": _iso(at), "client_ref": message.client_ref, "ip_address": "203.0.113.7"}
    return "POST", "/v1/callbacks/generic/link-clicks", json.dumps(body).encode(), "application/json"


def send(base: str, method: str, path: str, body: bytes | None, content_type: str | None,
         token: str = "", timeout: float = 15.0) -> int:
    """One HTTP request; returns the status (0 when the server cannot be reached)."""
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


def demo_vendors() -> list[str]:
    """generic, plus every vendor this demo can speak for whose adapter exists in receiver/vendors/."""
    from receiver.vendors import load_adapters

    adapters = load_adapters()
    return ["generic"] + [name for name in ("mobivate", "jasmin", *VENDOR_RECEIPTS) if name in adapters]


def plan(count: int, seed: int | None) -> tuple[list[Message], list[tuple], str]:
    """The messages and the ordered callback requests (receipts, STOPs, clicks) of one demo run."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    vendors = demo_vendors()
    now = datetime.now(UTC)
    messages = [Message(vendors[i % len(vendors)], i, run, rng, now - timedelta(minutes=rng.randrange(5, 120)))
                for i in range(count)]
    callbacks = []
    for message in messages:
        later = message.sent_at + timedelta(seconds=rng.randrange(2, 90))
        if message.outcome == "none":
            continue
        if message.outcome != "pending" and rng.random() < 0.3:
            callbacks.append(receipt_request(message, "pending", later - timedelta(seconds=1)))
        callbacks.append(receipt_request(message, message.outcome, later))
        if message.click:
            callbacks.append(click_request(message, later + timedelta(minutes=rng.randrange(1, 30))))
        if message.stop:
            word = rng.choice(["STOP", "stop", "Stop.", "UNSUBSCRIBE"])
            callbacks.append(stop_request(message, later + timedelta(minutes=rng.randrange(1, 60)), word))
    rng.shuffle(callbacks)  # vendors do not call back in order; some receipts will arrive "before" their send
    return messages, callbacks, run


@click.command("demo")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="Base URL of the running receiver.")
@click.option("--count", default=200, show_default=True, type=click.IntRange(1, 1_000_000), help="Messages to send.")
@click.option("--token", default="", show_default="$SMSHOOKS_API_TOKEN, else the token `smshooks run` wrote",
              help="Bearer token for POST /v1/sent-messages and the report link.")
@click.option("--seed", type=int, default=None, help="Random seed, for a repeatable stream.")
@click.pass_context
def COMMAND(ctx: click.Context, url: str, count: int, token: str, seed: int | None) -> None:  # noqa: N802
    """Play a realistic mixed stream into a running stack, then print where the report is.

    \b
    Sent messages go to POST /v1/sent-messages; receipts (delivered, failed, expired, rejected, pending,
    some never) come back through every vendor's own callback URL in its own format (generic, Mobivate,
    Jasmin, Sinch, Fortytwo, Twilio, Vonage), to numbers in GB, FR and AU, with STOP replies and link
    clicks mixed in, in shuffled order. The report link it prints measures ages from missing_receipt_hours
    ahead (`now=`), so the messages that never get a receipt show up as missing.

    \b
    Examples:
      smshooks demo                                  # into `make run`'s stack, with its session token
      smshooks demo --count 2000 --seed 7
      smshooks demo --url http://127.0.0.1:8000 --token "$SMSHOOKS_API_TOKEN"   # e.g. docker compose
    """
    from smshooks.cli import settings_from
    from smshooks.session_token import client_token

    settings = settings_from(ctx)
    configured = token or settings.api_token
    token = client_token(configured, Path(settings.data_dir))
    shown_token = "$SMSHOOKS_API_TOKEN" if configured else token  # a session token was printed by `run` already
    base = url.rstrip("/")
    messages, callbacks, run = plan(count, seed)
    statuses: Counter[int] = Counter()
    started = datetime.now(UTC) - timedelta(hours=3)
    with tqdm(total=len(messages) + len(callbacks), unit="req", desc="demo") as progress:
        for start in range(0, len(messages), SENT_PER_REQUEST):
            chunk = messages[start:start + SENT_PER_REQUEST]
            body = json.dumps([m.sent() for m in chunk]).encode()
            status = send(base, "POST", "/v1/sent-messages", body, "application/json", token)
            statuses[status] += len(chunk)
            progress.update(len(chunk))
            if status == 0:
                raise click.ClickException(f"cannot reach {base}; is the stack running (make run)?")
        for method, path, body, content_type in callbacks:
            statuses[send(base, method, path, body, content_type)] += 1
            progress.update(1)
    summary = ", ".join(f"{status or 'unreachable'}: {n}" for status, n in sorted(statuses.items()))
    click.echo(f"demo run {run}: {len(messages)} sent messages, {len(callbacks)} callbacks ({summary})")
    click.echo(f"vendors: {', '.join(sorted({m.vendor for m in messages}))}; "
               f"{sum(m.outcome == 'none' for m in messages)} messages will miss their receipt, "
               f"{sum(m.stop for m in messages)} STOP replies, {sum(m.click for m in messages)} clicks")
    # Receipts count as missing only after missing_receipt_hours: the link looks from that far ahead (`now=`),
    # so the messages that will miss their receipt show up in it today.
    ahead = max([settings.missing_receipt_hours, *(v.missing_receipt_hours or 0 for v in settings.vendors.values())])
    query = urllib.parse.urlencode({"from": _iso(started), "to": _iso(datetime.now(UTC) + timedelta(hours=1)),
                                    "now": _iso(datetime.now(UTC) + timedelta(hours=ahead + 1)),
                                    "group_by": "vendor,country"})
    click.echo(f"countries: {', '.join(sorted({m.country for m in messages}))}")
    click.echo(f"report (as it will read in {ahead + 1:g} h, when missing receipts count):")
    click.echo(f"  curl -H 'Authorization: Bearer {shown_token or '$SMSHOOKS_API_TOKEN'}' -o demo.html \\")
    click.echo(f"    '{base}/v1/reports/reconciliation?{query}&format=html'")
    if any(status >= 400 or status == 0 for status in statuses):
        raise click.ClickException("some requests were not accepted; see the counts above")
