"""Authentication schemes for vendor callbacks: each a small check over the raw request, constant-time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from receiver.errors import Unauthorized
from smshooks.settings import AuthScheme


@dataclass(frozen=True)
class CallbackRequest:
    """What the auth checks may look at: raw bytes and headers, never parsed JSON."""

    method: str
    url: str  # the URL as the vendor called it (public base URL applied)
    path_token: str | None
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client_ip: str


Clock = Callable[[], float]


def equal(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison of two secrets."""
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def _fresh(timestamp: str, tolerance: int, clock: Clock) -> None:
    """Reject signed timestamps outside the replay window."""
    try:
        signed_at = float(timestamp)
    except (TypeError, ValueError):
        raise Unauthorized("The signature timestamp is not a number.") from None
    if signed_at > 1e12:  # milliseconds
        signed_at /= 1000
    if abs(clock() - signed_at) > tolerance:
        raise Unauthorized("The signature timestamp is outside the replay window.")


def verify_sinch_hmac(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """Sinch: base64(HMAC-SHA256(secret, body + "." + nonce + "." + timestamp)) in X-Sinch-Webhook-Signature."""
    signature = request.headers.get("x-sinch-webhook-signature")
    nonce = request.headers.get("x-sinch-webhook-signature-nonce")
    timestamp = request.headers.get("x-sinch-webhook-signature-timestamp")
    if not signature or not nonce or not timestamp:
        raise Unauthorized("The Sinch signature headers are missing.")
    _fresh(timestamp, scheme.tolerance_seconds, clock)
    signed = request.body + b"." + nonce.encode() + b"." + timestamp.encode()
    expected = base64.b64encode(hmac.new(scheme.secret.encode(), signed, hashlib.sha256).digest())
    if not equal(expected, signature.strip()):
        raise Unauthorized("The Sinch signature does not match.")


def _url_variants(url: str) -> list[str]:
    """Twilio signs the URL with or without the default port, depending on how it was registered."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    variants = [url]
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if parts.port is None and default:
        variants.append(urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}")))
    elif parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=host)))
    return variants


def verify_twilio_signature(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """Twilio: base64(HMAC-SHA1(auth token, URL + sorted form name/value pairs)) in X-Twilio-Signature."""
    signature = request.headers.get("x-twilio-signature")
    if not signature:
        raise Unauthorized("The X-Twilio-Signature header is missing.")
    params = "" if request.method == "GET" else "".join(k + v for k, v in sorted(request.form))
    for url in _url_variants(request.url):
        expected = base64.b64encode(hmac.new(scheme.secret.encode(), (url + params).encode(), hashlib.sha1).digest())
        if equal(expected, signature.strip()):
            return
    raise Unauthorized("The Twilio signature does not match (check SMSHOOKS_PUBLIC_BASE_URL).")


def verify_standard_webhooks(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """Standard Webhooks: `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>` in webhook-signature."""
    message_id = request.headers.get("webhook-id")
    timestamp = request.headers.get("webhook-timestamp")
    signatures = request.headers.get("webhook-signature")
    if not message_id or not timestamp or not signatures:
        raise Unauthorized("The webhook-id, webhook-timestamp and webhook-signature headers are required.")
    _fresh(timestamp, scheme.tolerance_seconds, clock)
    secret = scheme.secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(secret, validate=True)
    except ValueError:
        key = scheme.secret.encode()
    signed = f"{message_id}.{timestamp}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    found = False
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        # compare every candidate so timing does not reveal which one matched
        found |= version == "v1" and equal(expected, value)
    if not found:
        raise Unauthorized("The webhook signature does not match.")


def vonage_signed_string(params: list[tuple[str, str]]) -> str:
    """Vonage signs `&k=v` over the sorted parameters except `sig`, with & and = in values replaced by _."""
    pairs = sorted((k, v) for k, v in params if k != "sig")
    return "".join(f"&{k}={v.replace('&', '_').replace('=', '_')}" for k, v in pairs)


def verify_vonage_signature(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """Vonage signed webhooks: `sig` over the sorted parameters with a timestamp, by the configured method.

    `md5hash` (Vonage's default) is md5(signed string + secret); `md5`, `sha1`, `sha256` and `sha512` are the HMAC
    of the signed string keyed by the secret.
    """
    # our own control parameters (?account=, ?token=) are not Vonage's and are not in its signature
    params = [(k, v) for k, v in request.query + request.form if k not in {"account", "token"}]
    if request.headers.get("content-type", "").startswith("application/json"):
        import json

        try:
            document = json.loads(request.body)
            params = [(k, str(v)) for k, v in document.items()] if isinstance(document, dict) else []
        except ValueError:
            params = []
    given = dict(params)
    signature = given.get("sig")
    timestamp = given.get("timestamp")
    if not signature or not timestamp:
        raise Unauthorized("The Vonage sig and timestamp parameters are required.")
    _fresh(timestamp, scheme.tolerance_seconds, clock)
    signed = vonage_signed_string(params)
    if scheme.method == "md5hash":
        expected = hashlib.md5((signed + scheme.secret).encode()).hexdigest()
    else:
        # the HMAC methods: Vonage's SDKs send the hex digest in upper case, md5hash in lower case; compare folded
        expected = hmac.new(scheme.secret.encode(), signed.encode(), scheme.method).hexdigest()
    if not equal(expected, signature.lower()):
        raise Unauthorized("The Vonage signature does not match.")


def verify_basic(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """HTTP Basic with the configured user name and password."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        raise Unauthorized("Basic credentials are required.")
    try:
        user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise Unauthorized("The Basic credentials are malformed.") from None
    ok_user = equal(user, scheme.username)
    ok_password = equal(password, scheme.password)
    if not (ok_user and ok_password):
        raise Unauthorized("The Basic credentials are wrong.")


def verify_bearer(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """`Authorization: Bearer <token>`."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise Unauthorized("A bearer token is required.")
    if not equal(header[7:].strip(), scheme.token):
        raise Unauthorized("The bearer token is wrong.")


def verify_url_token(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """A secret token in the registered URL: the last path segment or `?token=`, for vendors that sign nothing."""
    given = request.path_token or dict(request.query).get("token")
    if not given:
        raise Unauthorized("The URL token is missing.")
    if not equal(given, scheme.token):
        raise Unauthorized("The URL token is wrong.")


def verify_ip_allow_list(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """The client address (after the trusted proxy hops) must be in one of the allowed networks."""
    try:
        address = ipaddress.ip_address(request.client_ip)
    except ValueError:
        raise Unauthorized("The client address is not an IP address.") from None
    if not any(address in ipaddress.ip_network(net, strict=False) for net in scheme.allow):
        raise Unauthorized("The client address is not in the allow-list.")


VERIFIERS: dict[str, Callable[[AuthScheme, CallbackRequest, Clock], None]] = {
    "sinch_hmac": verify_sinch_hmac,
    "twilio_signature": verify_twilio_signature,
    "standard_webhooks": verify_standard_webhooks,
    "vonage_signature": verify_vonage_signature,
    "basic": verify_basic,
    "bearer": verify_bearer,
    "url_token": verify_url_token,
    "ip_allow_list": verify_ip_allow_list,
}
SIGNATURE_SCHEMES = {"sinch_hmac", "twilio_signature", "standard_webhooks", "vonage_signature"}


def authenticate(schemes: tuple[AuthScheme, ...], request: CallbackRequest, clock: Clock = time.time) -> bool | None:
    """Run every configured check; return whether a signature was verified (None when no scheme signs)."""
    signed = None
    for scheme in schemes:
        VERIFIERS[scheme.scheme](scheme, request, clock)
        if scheme.scheme in SIGNATURE_SCHEMES:
            signed = True
    return signed


def parse_query(query_string: bytes) -> list[tuple[str, str]]:
    """Query parameters as pairs, keeping repeats."""
    return parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
