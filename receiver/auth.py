"""Authentication schemes for vendor callbacks: each a small check over the raw request, constant-time."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from core.settings import AuthScheme, standard_webhooks_key
from receiver.errors import Unauthorized


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


def matches_any(expected: Iterable[str | bytes], given: str | bytes) -> bool:
    """Whether `given` equals one of the expected values (one per secret while a secret is rotated); every one is
    compared, so the time taken does not tell which secret matched."""
    found = False
    for value in expected:
        found |= equal(value, given)
    return found


def _fresh(timestamp: str, tolerance: int, clock: Clock) -> None:
    """Reject signed timestamps outside the replay window."""
    try:
        signed_at = float(timestamp)
    except (TypeError, ValueError):
        raise Unauthorized("The signature timestamp is not a number.") from None
    if not math.isfinite(signed_at):  # `nan` compares false with every bound, so it would pass any window
        raise Unauthorized("The signature timestamp is not a number.")
    if signed_at > 1e12:  # milliseconds
        signed_at /= 1000
    if abs(clock() - signed_at) > tolerance:
        raise Unauthorized("The signature timestamp is outside the replay window.")


# X-Sinch-Webhook-Signature-Algorithm values Sinch's SDKs accept (the .NET SDK lists all three; the Python SDK
# checks HmacSHA256 and reads no algorithm header, so a callback without the header is HmacSHA256)
SINCH_ALGORITHMS = {"hmacsha256": hashlib.sha256, "hmacsha384": hashlib.sha384, "hmacsha512": hashlib.sha512}


def verify_sinch_hmac(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """Sinch: base64(HMAC(secret, body + "." + nonce + "." + timestamp)) in X-Sinch-Webhook-Signature, by the
    X-Sinch-Webhook-Signature-Algorithm named (HmacSHA256 when none is)."""
    signature = request.headers.get("x-sinch-webhook-signature")
    nonce = request.headers.get("x-sinch-webhook-signature-nonce")
    timestamp = request.headers.get("x-sinch-webhook-signature-timestamp")
    if not signature or not nonce or not timestamp:
        raise Unauthorized("The Sinch signature headers are missing.")
    named = request.headers.get("x-sinch-webhook-signature-algorithm", "").strip() or "HmacSHA256"
    algorithm = SINCH_ALGORITHMS.get(named.lower())
    if algorithm is None:
        raise Unauthorized("The Sinch signature algorithm is not one of HmacSHA256, HmacSHA384, HmacSHA512.")
    _fresh(timestamp, scheme.tolerance_seconds, clock)
    signed = request.body + b"." + nonce.encode() + b"." + timestamp.encode()
    expected = (base64.b64encode(hmac.new(secret.encode(), signed, algorithm).digest())
                for secret in scheme.signing_secrets)
    if not matches_any(expected, signature.strip()):
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


# Twilio signs with HMAC-SHA1 and the auth token, or, under a Webhooks rule, with the rule's SharedKey and the
# algorithm its X-Twilio-Webhooks-Signature-Settings header names (`key=<SharedKey id>,algorithm=HMAC_SHA256`)
TWILIO_ALGORITHMS = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}


def twilio_algorithm(signature_settings: str) -> str:
    """The algorithm named in X-Twilio-Webhooks-Signature-Settings; none named means the legacy HMAC_SHA1."""
    for part in signature_settings.split(","):
        name, separator, value = part.partition("=")
        if separator and name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return "HMAC_SHA1"


def _twilio_account_sid(request: CallbackRequest) -> str:
    """The AccountSid the callback names: a form or query parameter, or a JSON body's top-level field."""
    for name, value in request.form + request.query:
        if name == "AccountSid":
            return value
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            document = json.loads(request.body)
        except ValueError:
            return ""
        if isinstance(document, dict) and isinstance(document.get("AccountSid"), str):
            return document["AccountSid"]
    return ""


def _is_form(request: CallbackRequest) -> bool:
    return request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")


def verify_twilio_signature(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """Twilio: base64(HMAC(token, URL + sorted form name/value pairs)) in X-Twilio-Signature.

    The token is the AccountSid's own auth token (subaccounts) or one of the scheme's secrets (auth token,
    SharedKey); a JSON body is not in the signed string but in the URL, as its hex SHA-256 in `?bodySHA256=`.
    """
    signature = request.headers.get("x-twilio-signature")
    if not signature:
        raise Unauthorized("The X-Twilio-Signature header is missing.")
    algorithm = TWILIO_ALGORITHMS.get(twilio_algorithm(request.headers.get("x-twilio-webhooks-signature-settings", "")))
    if algorithm is None:
        raise Unauthorized("The Twilio signature algorithm is not one of HMAC_SHA1, HMAC_SHA256.")
    tokens = dict(scheme.account_secrets).get(_twilio_account_sid(request), ()) + scheme.signing_secrets
    if not tokens:
        # a subaccount we hold no token for: it cannot be verified, which is a 401 like any unverified request
        raise Unauthorized("No auth token is configured for the AccountSid of this callback.")
    body_hash = dict(request.query).get("bodySHA256")
    if body_hash is not None and not _is_form(request):
        # Twilio's JSON webhooks: the URL (which carries bodySHA256) is signed alone; the hash vouches for the body
        if not equal(hashlib.sha256(request.body).hexdigest(), body_hash):
            raise Unauthorized("The body does not match its bodySHA256.")
        params = ""
    else:
        # Twilio's SDK signs each distinct name/value pair once, sorted by name then value
        params = "" if request.method == "GET" else "".join(k + v for k, v in sorted(set(request.form)))
    expected = (base64.b64encode(hmac.new(token.encode(), (url + params).encode(), algorithm).digest())
                for token in tokens for url in _url_variants(request.url))
    if not matches_any(expected, signature.strip()):
        raise Unauthorized("The Twilio signature does not match (check SMSHOOKS_PUBLIC_BASE_URL).")


@functools.lru_cache(maxsize=64)
def _webhooks_key(secret: str) -> bytes:
    """A configured secret's HMAC key, decoded once rather than on every callback."""
    return standard_webhooks_key(secret)


def verify_standard_webhooks(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """Standard Webhooks: `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>` in webhook-signature."""
    message_id = request.headers.get("webhook-id")
    timestamp = request.headers.get("webhook-timestamp")
    signatures = request.headers.get("webhook-signature")
    if not message_id or not timestamp or not signatures:
        raise Unauthorized("The webhook-id, webhook-timestamp and webhook-signature headers are required.")
    _fresh(timestamp, scheme.tolerance_seconds, clock)
    signed = f"{message_id}.{timestamp}.".encode() + request.body
    expected = [base64.b64encode(hmac.digest(_webhooks_key(secret), signed, hashlib.sha256)).decode()
                for secret in scheme.signing_secrets]
    found = False
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        # compare every candidate with every key so timing does not reveal which one matched
        found |= matches_any(expected, value) and version == "v1"
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
        expected = [hashlib.md5((signed + secret).encode()).hexdigest() for secret in scheme.signing_secrets]
    else:
        # the HMAC methods: hex digests, in upper case from some of Vonage's SDKs; compare folded
        expected = [hmac.new(secret.encode(), signed.encode(), scheme.method).hexdigest()
                    for secret in scheme.signing_secrets]
    if not matches_any(expected, signature.lower()):
        raise Unauthorized("The Vonage signature does not match.")


def verify_sns_signature(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """Amazon SNS: an RSA signature over the message's canonical fields, by the certificate at SigningCertURL (an
    https .pem URL on a host matching the scheme's pattern, fetched once); x-amz-sns-message-type must agree."""
    from receiver.vendors import aws_sms  # the vendor's module holds SNS's rules and its certificate cache

    try:
        message = json.loads(request.body)
    except ValueError:
        raise Unauthorized("The body is not a signed SNS message.") from None
    header_type = request.headers.get("x-amz-sns-message-type")
    if header_type is not None and isinstance(message, dict) and header_type != message.get("Type"):
        raise Unauthorized("The x-amz-sns-message-type header does not match the signed Type.")
    aws_sms.verify_message(message, scheme.host_pattern or aws_sms.DEFAULT_HOST_PATTERN, scheme.tolerance_seconds,
                           clock(), aws_sms.SNS_HTTP)


def verify_telnyx_signature(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """Telnyx: base64 Ed25519 signature of `{telnyx-timestamp}|{raw body}` in telnyx-signature-ed25519, checked
    with the account's public key, the timestamp within the replay window."""
    signature = request.headers.get("telnyx-signature-ed25519")
    timestamp = request.headers.get("telnyx-timestamp")
    if not signature or not timestamp:
        raise Unauthorized("The telnyx-signature-ed25519 and telnyx-timestamp headers are required.")
    _fresh(timestamp, scheme.tolerance_seconds, clock)
    try:
        signature_bytes = base64.b64decode(signature.strip(), validate=True)
    except ValueError:
        raise Unauthorized("The Telnyx signature is not base64.") from None
    if len(signature_bytes) != 64:
        raise Unauthorized("The Telnyx signature is not an Ed25519 signature (64 bytes).")
    signed = timestamp.encode() + b"|" + request.body
    try:
        VerifyKey(base64.b64decode(scheme.public_key.strip())).verify(signed, signature_bytes)
    except BadSignatureError:
        raise Unauthorized("The Telnyx signature does not match.") from None


def plivo_signed_url(request: CallbackRequest) -> str:
    """What Plivo signs (plivo-python `signature_v3`): the URL without its query, then `?` and the query pairs
    sorted as `k=v` joined by `&`; for a POST with parameters, a `.` after a non-empty query, then the sorted body
    parameters as `kv` with nothing between them. Pairs sort by name, a repeated name's values among themselves."""
    parts = urlsplit(request.url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(parts.query, keep_blank_values=True)))
    if request.method == "GET" or not request.form:
        return base + "?" + query if query else base
    return base + "?" + query + ("." if query else "") + "".join(k + v for k, v in sorted(request.form))


def verify_plivo_signature(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """Plivo: base64(HMAC-SHA256(auth token, signed URL + "." + nonce)) in X-Plivo-Signature-V3 (the (sub)account's
    token) or X-Plivo-Signature-Ma-V3 (always the main account's token), each possibly several comma-separated.

    Plivo signs no timestamp, so there is no replay window: the nonce only salts the signature."""
    nonce = request.headers.get("x-plivo-signature-v3-nonce")
    given = [request.headers.get("x-plivo-signature-v3", ""), request.headers.get("x-plivo-signature-ma-v3", "")]
    candidates = [value.strip() for header in given for value in header.split(",") if value.strip()]
    if not nonce or not candidates:
        raise Unauthorized("The X-Plivo-Signature-V3 and X-Plivo-Signature-V3-Nonce headers are required.")
    signed = (plivo_signed_url(request) + "." + nonce).encode()
    expected = [base64.b64encode(hmac.new(token.encode(), signed, hashlib.sha256).digest())
                for token in scheme.signing_secrets]
    found = False
    for candidate in candidates:
        # compare every candidate with every token so timing does not reveal which one matched
        found |= matches_any(expected, candidate.encode())
    if not found:
        raise Unauthorized("The Plivo signature does not match (check SMSHOOKS_PUBLIC_BASE_URL).")


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
    if not matches_any(scheme.accepted_tokens, header[7:].strip()):
        raise Unauthorized("The bearer token is wrong.")


def verify_url_token(scheme: AuthScheme, request: CallbackRequest, clock: Clock) -> None:
    """A secret token in the registered URL: the last path segment or `?token=`, for vendors that sign nothing."""
    given = request.path_token or dict(request.query).get("token")
    if not given:
        raise Unauthorized("The URL token is missing.")
    if not matches_any(scheme.accepted_tokens, given):
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
    "sns_signature": verify_sns_signature,
    "telnyx_signature": verify_telnyx_signature,
    "plivo_signature": verify_plivo_signature,
    "basic": verify_basic,
    "bearer": verify_bearer,
    "url_token": verify_url_token,
    "ip_allow_list": verify_ip_allow_list,
}
SIGNATURE_SCHEMES = {"sinch_hmac", "twilio_signature", "standard_webhooks", "vonage_signature", "sns_signature",
                     "telnyx_signature", "plivo_signature"}


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
