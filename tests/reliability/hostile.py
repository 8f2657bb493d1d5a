"""Hostile requests for the receiver: hypothesis strategies and seeded mutations of real payloads, and the
check that every answer is a documented one."""

from __future__ import annotations

import contextlib
import json
import random
from dataclasses import dataclass, field
from urllib.parse import urlencode

from hypothesis import strategies as st

DOCUMENTED = {200, 400, 401, 403, 404, 405, 408, 413, 415, 429, 503}
ERROR_KEYS = {"code", "text", "errors", "request_id"}
VENDORS = ("mobivate", "sinch", "fortytwo", "jasmin", "twilio", "vonage", "generic", "fullsms")
KINDS = ("delivery-receipts", "inbound-messages", "link-clicks")
TOKEN = "hostile-api-token"
CONTENT_TYPES = (
    "application/json", "application/x-www-form-urlencoded", "application/json; charset=utf-8",
    "application/json; charset=latin-1", "application/json; charset=utf-16", "application/json; charset=bogus-8",
    "application/json; charset=utf-7", "application/json; charset=cp500",
    "application/x-www-form-urlencoded; charset=shift_jis",
    "text/plain", "text/xml", "multipart/form-data; boundary=x", "application/octet-stream", "", "application/JSON",
    "application/json;;;charset=", "application/x-www-form-urlencoded; charset=\"utf-8\"",
)

# one real payload per route (as the vendors document them), the seeds of the mutations
REAL = [
    ("/v1/callbacks/generic/delivery-receipts", "json", {"message_id": "ABC-1", "status": "delivered",
                                                         "recipient": "+447700900123"}),
    ("/v1/callbacks/generic/inbound-messages", "json", {"message_id": "in-1", "from": "+447700900123",
                                                        "to": "60777", "text": "STOP"}),
    ("/v1/callbacks/mobivate/delivery-receipts", "json", {"id": "6f1c9b1e-3b7a-4c7e-9d7e-1a2b3c4d5e6f",
                                                          "status": "DELIVERED", "recipient": "447700900123"}),
    ("/v1/callbacks/sinch/delivery-receipts", "json", {
        "type": "recipient_delivery_report_sms", "batch_id": "01HZX3K9Q2M4N6P8R0T2V4W6Y8",
        "recipient": "447700900123", "code": 0, "status": "Delivered", "at": "2024-03-05T10:15:42Z"}),
    ("/v1/callbacks/sinch/inbound-messages", "json", {
        "type": "mo_text", "id": "01HZX3K9Q2M4N6P8R0T2V4W6Y9", "from": "447700900123", "to": "12345",
        "body": "STOP", "received_at": "2024-03-05T10:15:42Z"}),
    ("/v1/callbacks/fortytwo/delivery-receipts", "json", {"data": [{
        "channel": "sms", "message_id": "123456789", "status": {"code": "DELIVERED"}, "to": "447700900123"}]}),
    ("/v1/callbacks/jasmin/delivery-receipts", "form", {"id": "a1b2c3", "message_status": "DELIVRD", "level": "1"}),
    ("/v1/callbacks/twilio/delivery-receipts", "form", {
        "MessageSid": "SM1f0e2d3c4b5a69788796a5b4c3d2e1f0", "MessageStatus": "delivered",
        "AccountSid": "AC00000000000000000000000000000001", "To": "+447700900123", "From": "+15005550006"}),
    ("/v1/callbacks/vonage/inbound-messages", "form", {
        "msisdn": "447700900123", "to": "447700900000", "messageId": "0B00000012345678", "text": "Hi",
        "type": "text", "keyword": "HI", "message-timestamp": "2024-03-05 11:02:10"}),
    ("/v1/sent-messages", "json", {"vendor": "twilio", "message_id": "SM1", "recipient": "+447700900123"}),
]


@dataclass
class HostileRequest:
    """What the test client sends."""

    method: str
    path: str
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    origin: str = ""

    def short(self) -> str:
        return f"{self.origin} {self.method} {self.path[:120]} {self.content_type!r} {self.body[:120]!r}"


# --- hypothesis strategies ------------------------------------------------------------------------------------

text = st.text(max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25,
)
segment = st.sampled_from(VENDORS) | st.text(st.characters(codec="utf-8", exclude_characters="/?#"), min_size=1,
                                                 max_size=12)
paths = st.one_of(
    st.tuples(segment, st.sampled_from(KINDS) | segment).map(lambda t: f"/v1/callbacks/{t[0]}/{t[1]}"),
    st.tuples(segment, st.sampled_from(KINDS), segment).map(lambda t: f"/v1/callbacks/{t[0]}/{t[1]}/{t[2]}"),
    st.just("/v1/sent-messages"),
    st.sampled_from(["/v1/reports/reconciliation", "/v1/opt-outs", "/v1/opt-outs/447700900123",
                     "/v1/messages/twilio/SM1", "/healthz", "/openapi.json", "/", "/v1/callbacks/"]),
)


@st.composite
def hostile_requests(draw) -> HostileRequest:
    """A random method, path, query, content type, body and headers."""
    method = draw(st.sampled_from(["GET", "POST", "POST", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]))
    path = draw(paths)
    query = draw(st.dictionaries(text, text, max_size=4))
    if query:
        path += "?" + urlencode(query)
    body_kind = draw(st.sampled_from(["json", "form", "bytes", "none"]))
    if body_kind == "json":
        body = json.dumps(draw(json_values)).encode()
    elif body_kind == "form":
        body = urlencode(draw(st.dictionaries(text, text, max_size=8))).encode()
    elif body_kind == "bytes":
        body = draw(st.binary(max_size=200))
    else:
        body = b""
    content_type = draw(st.sampled_from(CONTENT_TYPES) | st.text(max_size=30) | st.none())
    headers = {}
    if draw(st.booleans()):
        headers["Authorization"] = draw(st.sampled_from([f"Bearer {TOKEN}", "Bearer x", "Basic !!", ""]) | text)
    if draw(st.booleans()):
        headers["X-Request-ID"] = draw(text)
    return HostileRequest(method, path, body, content_type, headers, "hypothesis")


# --- seeded mutations of real payloads ------------------------------------------------------------------------


def _encode(fmt: str, payload) -> bytes:
    if fmt == "json":
        return json.dumps(payload).encode()
    return urlencode(payload if isinstance(payload, dict) else {"x": str(payload)}).encode()


def _retyped(payload: dict, rng: random.Random) -> dict:
    """One field with a value of another type."""
    key = rng.choice(list(payload))
    odd = rng.choice([None, True, 12, -1.5, [], {}, ["x"], {"a": {"b": 1}}, "", "x" * 5000, 10**30])
    return dict(payload, **{key: odd})


MUTATIONS = (
    "truncate", "retype", "huge_number", "deep_nesting", "invalid_utf8", "content_type", "oversized", "header_crlf",
    "duplicate_key", "nul_bytes", "charset", "empty", "list_wrap", "drop_field", "unicode_junk", "huge_exponent",
)


def mutated_request(rng: random.Random) -> HostileRequest:
    """A real payload with one mutation applied."""
    path, fmt, payload = rng.choice(REAL)
    mutation = rng.choice(MUTATIONS)
    content_type = "application/json" if fmt == "json" else "application/x-www-form-urlencoded"
    headers = {"Authorization": f"Bearer {TOKEN}"} if path == "/v1/sent-messages" else {}
    body = _encode(fmt, payload)
    if mutation == "truncate":
        body = body[: rng.randrange(len(body))]
    elif mutation == "retype":
        body = _encode(fmt, _retyped(payload, rng)) if fmt == "json" else _encode(fmt, payload) + b"&x=%FF%FE"
    elif mutation == "huge_number":
        body = body.replace(b"}", b', "n": ' + b"9" * rng.choice([20, 400, 5000]) + b"}", 1)
    elif mutation == "huge_exponent":
        body = body.replace(b"}", b', "n": 1e999999}', 1)
    elif mutation == "deep_nesting":
        depth = rng.choice([31, 33, 100, 5000])
        body = b"[" * depth + body + b"]" * depth
    elif mutation == "invalid_utf8":
        cut = rng.randrange(len(body))
        body = body[:cut] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]) + body[cut:]
    elif mutation == "content_type":
        content_type = rng.choice(CONTENT_TYPES)
    elif mutation == "oversized":
        body = body + b" " * rng.choice([32_768, 100_000])
    elif mutation == "header_crlf":
        headers["X-Request-ID"] = rng.choice(["abc\r\nSet-Cookie: x=1", "id\x00nul", "a" * 10_000, "ok-request-1"])
        headers[rng.choice(["X-Forwarded-For", "X-Evil", "Authorization"])] = "1.2.3.4\r\nX-Injected: yes"
    elif mutation == "duplicate_key":
        key = rng.choice(list(payload))
        body = body.replace(b"{", b'{"' + key.encode() + b'": "dup", ', 1) if fmt == "json" else body + b"&" + \
            key.encode() + b"=dup"
    elif mutation == "nul_bytes":
        cut = rng.randrange(len(body))
        body = body[:cut] + rng.choice([b"\x00", b"\\u0000", b"%00"]) + body[cut:]
    elif mutation == "charset":
        charset = rng.choice(["utf-16", "utf-32", "latin-1", "cp500", "koi8-r", "utf-7", "x-unknown"])
        content_type += f"; charset={charset}"
        with contextlib.suppress(LookupError, UnicodeError):
            body = body.decode().encode(charset)
    elif mutation == "empty":
        body = b""
    elif mutation == "list_wrap":
        body = _encode(fmt, [payload] * rng.choice([0, 2, 600])) if fmt == "json" else body + b"&" + body
    elif mutation == "drop_field":
        smaller = dict(payload)
        smaller.pop(rng.choice(list(payload)))
        body = _encode(fmt, smaller)
    elif mutation == "unicode_junk":
        key = rng.choice(list(payload))
        junk = ["\u202e\u0000", "𝔘𝔫𝔦", "\ufeff" * 3] + (["\ud800"] if fmt == "json" else [])  # lone surrogate
        body = _encode(fmt, dict(payload, **{key: rng.choice(junk)}))
    method = "GET" if fmt == "form" and rng.random() < 0.1 else "POST"
    if method == "GET":
        path, body = path + "?" + body.decode("latin-1"), b""
    return HostileRequest(method, path, body, content_type, headers, f"mutation:{mutation}")


# --- the check ------------------------------------------------------------------------------------------------


def problems(request: HostileRequest, response) -> list[str]:
    """What is wrong with an answer: undocumented status or body; empty when it is a documented answer."""
    status = response.status_code
    if status not in DOCUMENTED:
        return [f"status {status}"]
    if request.method == "HEAD":
        return []
    if status == 200:
        return _ok_problems(request, response)
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return [f"{status} without a JSON body"]
    found = []
    if not isinstance(body, dict) or not {"code", "text", "request_id"} <= set(body) or set(body) - ERROR_KEYS:
        found.append(f"{status} body keys {sorted(body) if isinstance(body, dict) else type(body)}")
    elif body["request_id"] != response.headers.get("X-Request-ID"):
        found.append(f"{status} request_id differs from X-Request-ID")
    if status == 405 and "Allow" not in response.headers:
        found.append("405 without Allow")
    if status in (429, 503) and "Retry-After" not in response.headers:
        found.append(f"{status} without Retry-After")
    return found


def _ok_problems(request: HostileRequest, response) -> list[str]:
    """A 200: our accepted body, a vendor ack, or a read API / document answer."""
    if request.method == "OPTIONS":
        # Flask's automatic OPTIONS answer (HTTP semantics, CORS preflight): empty, with Allow; nothing is published
        return [] if not response.get_data() and "Allow" in response.headers else ["200 to OPTIONS with a body"]
    path = request.path.split("?")[0]
    mimetype = response.mimetype
    if path.startswith(("/v1/callbacks/", "/v1/sent-messages")):
        if mimetype == "text/plain":
            return [] if response.get_data() in (b"ACK/Jasmin", b"OK") else [f"200 text {response.get_data()[:40]!r}"]
        if mimetype == "text/xml":
            return [] if b"<Response" in response.get_data() else ["200 xml without <Response>"]
        body = response.get_json(silent=True)
        if not isinstance(body, dict) or body.get("status") != "accepted" or not isinstance(body.get("event_ids"),
                                                                                             list):
            return [f"200 body {str(body)[:80]}"]
        return []
    return [] if mimetype in ("application/json", "text/csv", "text/html", "text/plain", "application/yaml",
                              "text/yaml") else [f"200 {mimetype}"]
