"""Every signature form the vendors' own software sends, through the real app and broker, and key rotation.

Fixtures, by source:
- Twilio: `twilio.request_validator` (twilio 9.13.0): `compute_signature(url, params, "HMAC_SHA256")` for webhooks
  under a Webhooks rule, which Twilio marks with `X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=...`
  (twilio-node's WebhookSignatureValidation.md); JSON bodies signed through `?bodySHA256=` and checked with the
  SDK's own `RequestValidator.validate(url, body, signature)`; `I-Twilio-Idempotency-Token` per Twilio's webhooks
  FAQ (the same token on each retry of one webhook).
- Sinch: `calculate_sinch_event_signature` (sinch 2.3.0) for HmacSHA256; HmacSHA384 and HmacSHA512 are the other
  `X-Sinch-Webhook-Signature-Algorithm` values Sinch's .NET SDK (ISmsSinchEvents.ValidateAuthenticationHeader)
  accepts, computed here with the same signed string.
- Standard Webhooks: the reference library (standardwebhooks 1.1.0) signs with secrets written with and without
  `whsec_` and without base64 padding, forms it accepts.
- Vonage: `vonage_http_client.Auth.sign_params` (vonage-http-client 1.5.2) for the HMAC methods, named `md5`,
  `sha1`, `sha256`, `sha512` as that SDK names them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
from sinch.domains.authentication.sinch_events.v1.authentication_validation import (
    compute_signed_data,
    validate_sinch_event_signature_with_nonce,
)
from twilio.request_validator import RequestValidator

from core.settings import AuthScheme
from receiver.auth import CallbackRequest, verify_twilio_signature
from receiver.errors import Unauthorized
from tests.receiver.test_auth import (
    GENERIC_RECEIPT,
    GENERIC_RECEIPTS,
    PUBLIC_BASE,
    SINCH_RECEIPTS,
    SINCH_REPORT,
    TWILIO_RECEIPTS,
    TWILIO_STATUS,
    VONAGE_INBOUND,
    VONAGE_MO,
    WEBHOOK_KEY,
    assert_unauthorized,
    sinch_headers,
    twilio_signature,
    vonage_signed,
    webhook_headers,
)

SHARED_KEY = "twilio-webhooks-rule-shared-key"
SUBACCOUNT = "AC00000000000000000000000000000002"

# --- Twilio -----------------------------------------------------------------------------------------------------


@pytest.fixture
def twilio_client(make_client):
    return make_client(public_base_url=PUBLIC_BASE, vendors={"twilio": {"auth": [
        {"scheme": "twilio_signature", "secret": "twilio-auth-token", "secrets": [SHARED_KEY]}]}})


def test_twilio_hmac_sha256_under_a_webhooks_rule_is_accepted(twilio_client, published):
    url = PUBLIC_BASE + TWILIO_RECEIPTS
    signature = twilio_signature(url, TWILIO_STATUS, token=SHARED_KEY, algorithm="HMAC_SHA256")
    settings = {"X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_01,algorithm=HMAC_SHA256"}
    response = twilio_client.post(TWILIO_RECEIPTS, data=TWILIO_STATUS,
                                  headers={"X-Twilio-Signature": signature, **settings})
    assert response.status_code == 200, response.get_json()
    assert published.events("sms.delivery-receipts")[0].payload.signature_valid is True
    # the same SHA256 signature without the header naming its algorithm is not what Twilio sends
    assert_unauthorized(twilio_client.post(TWILIO_RECEIPTS, data=TWILIO_STATUS,
                                           headers={"X-Twilio-Signature": signature}))
    # an algorithm Twilio may add later is refused (401), never guessed
    assert_unauthorized(twilio_client.post(TWILIO_RECEIPTS, data=TWILIO_STATUS, headers={
        "X-Twilio-Signature": signature, "X-Twilio-Webhooks-Signature-Settings": "key=k,algorithm=HMAC_SHA3"}))


@pytest.mark.parametrize("token", ["twilio-auth-token", SHARED_KEY])
def test_twilio_sha1_with_either_configured_secret_is_accepted(twilio_client, token):
    signature = twilio_signature(PUBLIC_BASE + TWILIO_RECEIPTS, TWILIO_STATUS, token=token)
    response = twilio_client.post(TWILIO_RECEIPTS, data=TWILIO_STATUS, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


def test_twilio_idempotency_token_is_kept_with_the_event(twilio_client, published):
    signature = twilio_signature(PUBLIC_BASE + TWILIO_RECEIPTS, TWILIO_STATUS)
    response = twilio_client.post(TWILIO_RECEIPTS, data=TWILIO_STATUS, headers={
        "X-Twilio-Signature": signature,
        "I-Twilio-Idempotency-Token": "6c8f2b4e-0e5c-4c7e-9a5d-3f0f7a1b2c3d-SM1f0e2d3c4b5a69788796a5b4c3d2e1f0"})
    assert response.status_code == 200
    [event] = published.events("sms.delivery-receipts")
    assert event.payload.raw["idempotency_token"] == (
        "6c8f2b4e-0e5c-4c7e-9a5d-3f0f7a1b2c3d-SM1f0e2d3c4b5a69788796a5b4c3d2e1f0")


@pytest.fixture
def subaccounts_client(make_client):
    """Twilio with only per-subaccount tokens: the callback's AccountSid picks the token."""
    return make_client(public_base_url=PUBLIC_BASE, vendors={"twilio": {"auth": [{
        "scheme": "twilio_signature",
        "account_secrets": {TWILIO_STATUS["AccountSid"]: "parent-token",
                            SUBACCOUNT: ["sub-token-new", "sub-token-old"]},
    }]}})


def test_twilio_subaccount_token_is_chosen_by_account_sid(subaccounts_client):
    url = PUBLIC_BASE + TWILIO_RECEIPTS
    sub = dict(TWILIO_STATUS, AccountSid=SUBACCOUNT)

    def post(params, token):
        return subaccounts_client.post(TWILIO_RECEIPTS, data=params,
                                       headers={"X-Twilio-Signature": twilio_signature(url, params, token=token)})

    assert post(TWILIO_STATUS, "parent-token").status_code == 200
    assert post(sub, "sub-token-new").status_code == 200
    assert post(sub, "sub-token-old").status_code == 200  # a subaccount token being rotated
    assert_unauthorized(post(sub, "parent-token"))  # another account's token does not sign for this one
    assert_unauthorized(post(TWILIO_STATUS, "sub-token-new"))


@pytest.mark.parametrize("account_sid", ["AC99999999999999999999999999999999", None, ""])
def test_twilio_unknown_or_missing_account_sid_is_401(subaccounts_client, account_sid):
    params = {k: v for k, v in TWILIO_STATUS.items() if k != "AccountSid"}
    if account_sid is not None:
        params["AccountSid"] = account_sid
    signature = twilio_signature(PUBLIC_BASE + TWILIO_RECEIPTS, params, token="parent-token")
    assert_unauthorized(subaccounts_client.post(TWILIO_RECEIPTS, data=params,
                                                headers={"X-Twilio-Signature": signature}))


def twilio_json_request(body: bytes, signature: str, url: str) -> CallbackRequest:
    query = [("bodySHA256", url.rsplit("bodySHA256=", 1)[1])]
    return CallbackRequest(method="POST", url=url, path_token=None, query=query, form=[], body=body,
                           headers={"content-type": "application/json", "x-twilio-signature": signature},
                           client_ip="203.0.113.7")


def test_twilio_json_body_signed_through_body_sha256():
    scheme = AuthScheme(scheme="twilio_signature", secret="twilio-auth-token")
    body = json.dumps({"AccountSid": TWILIO_STATUS["AccountSid"], "MessageSid": "SM1", "MessageStatus": "delivered"})
    url = f"{PUBLIC_BASE}/v1/callbacks/twilio/delivery-receipts?bodySHA256={hashlib.sha256(body.encode()).hexdigest()}"
    validator = RequestValidator("twilio-auth-token")
    signature = validator.compute_signature(url, {})
    assert validator.validate(url, body, signature)  # the SDK's own check agrees this is a genuine request
    verify_twilio_signature(scheme, twilio_json_request(body.encode(), signature, url), time.time)
    with pytest.raises(Unauthorized, match="bodySHA256"):
        tampered = body.replace("delivered", "failed").encode()
        verify_twilio_signature(scheme, twilio_json_request(tampered, signature, url), time.time)
    with pytest.raises(Unauthorized):
        wrong = RequestValidator("other-token").compute_signature(url, {})
        verify_twilio_signature(scheme, twilio_json_request(body.encode(), wrong, url), time.time)


# --- Sinch ------------------------------------------------------------------------------------------------------


@pytest.fixture
def sinch_client(make_client):
    return make_client(vendors={"sinch": {"auth": [{"scheme": "sinch_hmac", "secret": "sinch-secret"}]}})


def sinch_headers_with(body: bytes, algorithm: str, secret: str = "sinch-secret") -> dict[str, str]:
    """Sinch's signed string, signed with the HMAC the algorithm header names."""
    nonce, stamp = "01FJA8B4A7BM43YGWSG9GBV067", str(int(time.time()))
    digest = {"HmacSHA256": hashlib.sha256, "HmacSHA384": hashlib.sha384, "HmacSHA512": hashlib.sha512,
              "HmacSHA1": hashlib.sha1, "HmacMD5": hashlib.md5}[algorithm]
    signed = compute_signed_data(body.decode(), nonce, stamp).encode()
    return {"X-Sinch-Webhook-Signature": base64.b64encode(hmac.new(secret.encode(), signed, digest).digest()).decode(),
            "X-Sinch-Webhook-Signature-Nonce": nonce, "X-Sinch-Webhook-Signature-Timestamp": stamp,
            "X-Sinch-Webhook-Signature-Algorithm": algorithm}


@pytest.mark.parametrize("algorithm", ["HmacSHA256", "HmacSHA384", "HmacSHA512"])
def test_sinch_algorithms_its_sdks_accept(sinch_client, algorithm):
    body = json.dumps(SINCH_REPORT).encode()
    headers = sinch_headers_with(body, algorithm)
    if algorithm == "HmacSHA256":  # Sinch's Python SDK agrees on the one it checks
        assert validate_sinch_event_signature_with_nonce("sinch-secret", headers, body.decode())
    response = sinch_client.post(SINCH_RECEIPTS, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("algorithm", ["HmacSHA1", "HmacMD5"])
def test_sinch_other_algorithms_are_refused(sinch_client, algorithm):
    body = json.dumps(SINCH_REPORT).encode()
    assert_unauthorized(sinch_client.post(SINCH_RECEIPTS, data=body, content_type="application/json",
                                          headers=sinch_headers_with(body, algorithm)))


def test_sinch_algorithm_header_must_match_the_signature(sinch_client):
    body = json.dumps(SINCH_REPORT).encode()
    headers = dict(sinch_headers_with(body, "HmacSHA256"), **{"X-Sinch-Webhook-Signature-Algorithm": "HmacSHA512"})
    assert_unauthorized(sinch_client.post(SINCH_RECEIPTS, data=body, content_type="application/json",
                                          headers=headers))


# --- Standard Webhooks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("configured", [
    f"whsec_{WEBHOOK_KEY}", f"whsec_{WEBHOOK_KEY.rstrip('=')}", WEBHOOK_KEY, WEBHOOK_KEY.rstrip("=")])
def test_standard_webhooks_secret_forms_the_reference_library_accepts(make_client, configured):
    assert WEBHOOK_KEY.endswith("=")  # the key has padding to leave out
    client = make_client(vendors={"generic": {"auth": [{"scheme": "standard_webhooks", "secret": configured}]}})
    body = json.dumps(GENERIC_RECEIPT).encode()
    response = client.post(GENERIC_RECEIPTS, data=body, content_type="application/json",
                           headers=webhook_headers(body, key=configured))
    assert response.status_code == 200, response.get_json()


# --- rotation: the current and the previous secret both pass ----------------------------------------------------


def test_every_signed_scheme_accepts_current_and_previous_secrets(make_client):
    old_key = base64.b64encode(b"the-previous-standard-webhooks-k").decode()
    client = make_client(public_base_url=PUBLIC_BASE, vendors={
        "sinch": {"auth": [{"scheme": "sinch_hmac", "secret": "sinch-new", "secrets": ["sinch-old"]}]},
        "twilio": {"auth": [{"scheme": "twilio_signature", "secret": "twilio-new", "secrets": ["twilio-old"]}]},
        "vonage": {"auth": [{"scheme": "vonage_signature", "secret": "vonage-new", "secrets": ["vonage-old"],
                             "method": "sha256"}]},
        "generic": {"auth": [{"scheme": "standard_webhooks", "secret": f"whsec_{WEBHOOK_KEY}",
                              "secrets": [f"whsec_{old_key}"]}]},
    })
    sinch_body, generic_body = json.dumps(SINCH_REPORT).encode(), json.dumps(GENERIC_RECEIPT).encode()
    for generation in ("new", "old", "unknown"):
        answers = [
            client.post(SINCH_RECEIPTS, data=sinch_body, content_type="application/json",
                        headers=sinch_headers(sinch_body, secret=f"sinch-{generation}")),
            client.post(TWILIO_RECEIPTS, data=TWILIO_STATUS, headers={"X-Twilio-Signature": twilio_signature(
                PUBLIC_BASE + TWILIO_RECEIPTS, TWILIO_STATUS, token=f"twilio-{generation}")}),
            client.get(f"{VONAGE_INBOUND}?"
                       f"{urlencode(vonage_signed(VONAGE_MO, secret=f'vonage-{generation}', method='sha256'))}"),
            client.post(GENERIC_RECEIPTS, data=generic_body, content_type="application/json",
                        headers=webhook_headers(generic_body, key={"new": WEBHOOK_KEY, "old": old_key}.get(
                            generation, base64.b64encode(b"x" * 32).decode()))),
        ]
        if generation == "unknown":
            for answer in answers:
                assert_unauthorized(answer)
        else:
            assert [a.status_code for a in answers] == [200] * 4, [a.get_json() for a in answers]


@pytest.mark.parametrize("scheme", ["bearer", "url_token"])
def test_tokens_rotate_too(make_client, scheme):
    client = make_client(vendors={"generic": {"auth": [{"scheme": scheme, "token": "tok-new", "tokens": ["tok-old"]}]}})

    def post(token):
        if scheme == "bearer":
            return client.post(GENERIC_RECEIPTS, json=GENERIC_RECEIPT, headers={"Authorization": f"Bearer {token}"})
        return client.post(f"{GENERIC_RECEIPTS}/{token}", json=GENERIC_RECEIPT)

    assert post("tok-new").status_code == 200 and post("tok-old").status_code == 200
    assert_unauthorized(post("tok-other"))


# --- replay window: a timestamp that is no time -----------------------------------------------------------------


@pytest.mark.parametrize("stamp", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_a_signed_timestamp_that_is_not_a_time_is_refused(make_client, stamp):
    client = make_client(vendors={"vonage": {"auth": [{"scheme": "vonage_signature", "secret": "vonage-secret"}]},
                                  "sinch": {"auth": [{"scheme": "sinch_hmac", "secret": "sinch-secret"}]}})
    params = vonage_signed_with_timestamp(dict(VONAGE_MO, timestamp=stamp, nonce="n-1"), "vonage-secret")
    assert_unauthorized(client.get(f"{VONAGE_INBOUND}?{urlencode(params)}"))
    body = json.dumps(SINCH_REPORT).encode()
    nonce = "01FJA8B4A7BM43YGWSG9GBV067"
    signed = compute_signed_data(body.decode(), nonce, stamp).encode()
    headers = {"X-Sinch-Webhook-Signature": base64.b64encode(
        hmac.new(b"sinch-secret", signed, hashlib.sha256).digest()).decode(),
        "X-Sinch-Webhook-Signature-Nonce": nonce, "X-Sinch-Webhook-Signature-Timestamp": stamp}
    assert_unauthorized(client.post(SINCH_RECEIPTS, data=body, content_type="application/json", headers=headers))


def vonage_signed_with_timestamp(params: dict[str, str], secret: str) -> dict[str, str]:
    """Re-sign params (keeping their own `timestamp`) with md5hash, as Vonage would sign them."""
    from receiver.auth import vonage_signed_string

    unsigned = {k: v for k, v in params.items() if k != "sig"}
    sig = hashlib.md5((vonage_signed_string(list(unsigned.items())) + secret).encode()).hexdigest()
    return dict(unsigned, sig=sig)
