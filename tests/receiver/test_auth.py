"""The auth matrix through the real app and broker: every scheme accepts a correct request and answers 401
(never recorded) to missing, wrong, tampered and stale credentials; secrets never reach the rejected topic.

Fixtures: signatures are computed by the vendors' own SDKs, pinned as test dependencies: Sinch's
`calculate_sinch_event_signature` (sinch 2.3.0), Twilio's `RequestValidator.compute_signature` (twilio 9.13.0),
the Standard Webhooks reference library's `Webhook.sign` (standardwebhooks 1.1.0) and Vonage's
`vonage_http_client.Auth.sign_params` (vonage-http-client 1.5.2, the HMAC methods). Vonage's default `md5hash`
(MD5 of the signed string followed by the secret, from Vonage's "Signing messages" guide) is computed here: the
current SDK has no function for it. Bodies are the vendors' documented examples (see test_sinch/test_twilio/...).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from sinch.domains.authentication.sinch_events.v1.authentication_validation import (
    calculate_sinch_event_signature,
    compute_signed_data,
)
from standardwebhooks import Webhook
from twilio.request_validator import RequestValidator
from vonage_http_client.auth import Auth as VonageAuth

from receiver.auth import vonage_signed_string

SINCH_RECEIPTS = "/v1/callbacks/sinch/delivery-receipts"
TWILIO_RECEIPTS = "/v1/callbacks/twilio/delivery-receipts"
TWILIO_INBOUND = "/v1/callbacks/twilio/inbound-messages"
VONAGE_INBOUND = "/v1/callbacks/vonage/inbound-messages"
GENERIC_RECEIPTS = "/v1/callbacks/generic/delivery-receipts"
PUBLIC_BASE = "https://hooks.example.com"

SINCH_REPORT = {"type": "recipient_delivery_report_sms", "batch_id": "01HZX3K9Q2M4N6P8R0T2V4W6Y8",
                "recipient": "447700900123", "code": 0, "status": "Delivered", "at": "2024-03-05T10:15:42Z"}
TWILIO_STATUS = {"MessageSid": "SM1f0e2d3c4b5a69788796a5b4c3d2e1f0", "MessageStatus": "delivered",
                 "AccountSid": "AC00000000000000000000000000000001", "To": "+447700900123", "From": "+15005550006"}
VONAGE_MO = {"msisdn": "447700900123", "to": "447700900000", "messageId": "0B00000012345678", "text": "Hi \u00e9",
             "type": "unicode", "keyword": "HI", "message-timestamp": "2024-03-05 11:02:10"}
GENERIC_RECEIPT = {"message_id": "ABC-1", "status": "delivered"}
SINCH_SECRET, TWILIO_TOKEN, VONAGE_SECRET = "sinch-secret", "twilio-auth-token", "vonage-signature-secret"
WEBHOOK_KEY = base64.b64encode(b"standard-webhooks-key-32-bytes!!").decode()


def assert_unauthorized(response) -> None:
    """401 with the documented code and body."""
    assert response.status_code == 401, response.get_json()
    body = response.get_json()
    assert body["code"] == "unauthorized" and body["request_id"] == response.headers["X-Request-ID"]


def sinch_headers(body: bytes, secret: str = SINCH_SECRET, timestamp: float | None = None) -> dict[str, str]:
    """X-Sinch-Webhook-Signature* headers as the Sinch SDK computes them."""
    nonce, stamp = "01FJA8B4A7BM43YGWSG9GBV067", str(int(timestamp if timestamp is not None else time.time()))
    signature = calculate_sinch_event_signature(compute_signed_data(body.decode(), nonce, stamp), secret)
    return {"X-Sinch-Webhook-Signature": signature, "X-Sinch-Webhook-Signature-Nonce": nonce,
            "X-Sinch-Webhook-Signature-Timestamp": stamp}


def twilio_signature(url: str, params: dict[str, str] | None, token: str = TWILIO_TOKEN,
                     algorithm: str | None = None) -> str:
    """X-Twilio-Signature as Twilio's SDK computes it (HMAC_SHA1 unless a Webhooks rule names HMAC_SHA256)."""
    return RequestValidator(token).compute_signature(url, params or {}, algorithm)


def webhook_headers(body: bytes, key: str = WEBHOOK_KEY, timestamp: float | None = None) -> dict[str, str]:
    """Standard Webhooks headers for a `whsec_` key."""
    message_id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    signed_at = datetime.fromtimestamp(int(timestamp if timestamp is not None else time.time()), tz=UTC)
    signature = Webhook(key).sign(message_id, signed_at, body.decode())
    return {"webhook-id": message_id, "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": signature}


def vonage_signed(params: dict[str, str], secret: str = VONAGE_SECRET, timestamp: float | None = None,
                  method: str = "md5hash") -> dict:
    """Params plus `timestamp` and a `sig`, as Vonage signs webhooks: the HMAC methods by Vonage's SDK, md5hash as
    its guide describes it (MD5 of the signed string followed by the secret)."""
    params = dict(params, timestamp=str(int(timestamp if timestamp is not None else time.time())), nonce="n-1")
    if method == "md5hash":
        sig = hashlib.md5((vonage_signed_string(list(params.items())) + secret).encode()).hexdigest()
    else:
        sig = VonageAuth(api_key="key", signature_secret=secret, signature_method=method).sign_params(dict(params))
    return dict(params, sig=sig)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- sinch_hmac -------------------------------------------------------------------------------------------------


@pytest.fixture
def sinch_client(make_client):
    return make_client(vendors={"sinch": {"auth": [{"scheme": "sinch_hmac", "secret": SINCH_SECRET}]}})


def test_sinch_hmac_correct_signature_is_accepted_and_marked_valid(sinch_client, published):
    body = json.dumps(SINCH_REPORT).encode()
    response = sinch_client.post(SINCH_RECEIPTS, data=body, content_type="application/json",
                                 headers=sinch_headers(body))
    assert response.status_code == 200, response.get_json()
    assert published.events("sms.delivery-receipts")[0].payload.signature_valid is True


@pytest.mark.parametrize("case", ["missing", "wrong secret", "tampered body", "stale timestamp", "future timestamp"])
def test_sinch_hmac_refuses_bad_signatures(sinch_client, case):
    body = json.dumps(SINCH_REPORT).encode()
    headers = {
        "missing": {},
        "wrong secret": sinch_headers(body, secret="not-the-secret"),
        "tampered body": sinch_headers(body),
        "stale timestamp": sinch_headers(body, timestamp=time.time() - 3600),
        "future timestamp": sinch_headers(body, timestamp=time.time() + 3600),
    }[case]
    sent = body.replace(b"Delivered", b"Failed") if case == "tampered body" else body
    assert_unauthorized(sinch_client.post(SINCH_RECEIPTS, data=sent, content_type="application/json",
                                          headers=headers))


# --- twilio_signature -------------------------------------------------------------------------------------------


@pytest.fixture
def twilio_client(make_client):
    return make_client(public_base_url=PUBLIC_BASE,
                       vendors={"twilio": {"auth": [{"scheme": "twilio_signature", "secret": TWILIO_TOKEN}]}})


@pytest.mark.parametrize("base", [PUBLIC_BASE, "https://hooks.example.com:443"])
def test_twilio_signature_over_the_public_url_is_accepted(twilio_client, published, base):
    signature = twilio_signature(base + TWILIO_RECEIPTS, TWILIO_STATUS)
    response = twilio_client.post(TWILIO_RECEIPTS, data=TWILIO_STATUS, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.get_json()
    assert published.events("sms.delivery-receipts")[0].payload.signature_valid is True


def test_twilio_signature_covers_the_query_string(twilio_client):
    url = f"{PUBLIC_BASE}{TWILIO_RECEIPTS}?tag=eu"
    ok = twilio_client.post(TWILIO_RECEIPTS + "?tag=eu", data=TWILIO_STATUS,
                            headers={"X-Twilio-Signature": twilio_signature(url, TWILIO_STATUS)})
    assert ok.status_code == 200
    moved = twilio_client.post(TWILIO_RECEIPTS + "?tag=us", data=TWILIO_STATUS,
                               headers={"X-Twilio-Signature": twilio_signature(url, TWILIO_STATUS)})
    assert_unauthorized(moved)


@pytest.mark.parametrize("case", ["missing", "wrong token", "tampered parameter", "internal url"])
def test_twilio_signature_refuses_bad_signatures(twilio_client, case):
    url = PUBLIC_BASE + TWILIO_RECEIPTS
    headers = {
        "missing": {},
        "wrong token": {"X-Twilio-Signature": twilio_signature(url, TWILIO_STATUS, token="other-token")},
        "tampered parameter": {"X-Twilio-Signature": twilio_signature(url, TWILIO_STATUS)},
        # signed for the address the app sees, not the one Twilio was given: proves the public URL is used
        "internal url": {"X-Twilio-Signature": twilio_signature("http://localhost" + TWILIO_RECEIPTS, TWILIO_STATUS)},
    }[case]
    sent = dict(TWILIO_STATUS, MessageStatus="failed") if case == "tampered parameter" else TWILIO_STATUS
    assert_unauthorized(twilio_client.post(TWILIO_RECEIPTS, data=sent, headers=headers))


def test_twilio_signature_accepts_ascii_inbound(twilio_client):
    params = {"MessageSid": "SMa1", "From": "+447700900123", "To": "+15005550006", "Body": "STOP please",
              "NumMedia": "0", "AccountSid": "AC1"}
    response = twilio_client.post(TWILIO_INBOUND, data=params,
                                  headers={"X-Twilio-Signature": twilio_signature(PUBLIC_BASE + TWILIO_INBOUND,
                                                                                  params)})
    assert response.status_code == 200 and response.mimetype == "text/xml"


def test_twilio_signature_accepts_non_ascii_inbound(twilio_client):
    params = {"MessageSid": "SMa2", "From": "+447700900123", "To": "+15005550006", "Body": "Caf\u00e9 \U0001f44b",
              "NumMedia": "0", "AccountSid": "AC1"}
    response = twilio_client.post(TWILIO_INBOUND, data=params,
                                  headers={"X-Twilio-Signature": twilio_signature(PUBLIC_BASE + TWILIO_INBOUND,
                                                                                  params)})
    assert response.status_code == 200


def test_twilio_inbound_by_get_is_signed_over_the_url_with_its_query(twilio_client, published):
    params = {"MessageSid": "SMa3", "From": "+447700900123", "To": "+15005550006", "Body": "STOP",
              "NumMedia": "0", "AccountSid": "AC1"}
    path = f"{TWILIO_INBOUND}?{urlencode(params)}"
    # a GET webhook has no body parameters: Twilio signs the URL alone
    response = twilio_client.get(path, headers={"X-Twilio-Signature": twilio_signature(PUBLIC_BASE + path, {})})
    assert response.status_code == 200 and response.mimetype == "text/xml"
    [event] = published.events("sms.inbound-messages")
    assert (event.payload.message_id, event.payload.text, event.payload.signature_valid) == ("SMa3", "STOP", True)
    tampered = path.replace("STOP", "START")
    assert_unauthorized(twilio_client.get(
        tampered, headers={"X-Twilio-Signature": twilio_signature(PUBLIC_BASE + path, {})}))
    assert_unauthorized(twilio_client.get(path))


# --- standard_webhooks (generic) ----------------------------------------------------------------------------------


@pytest.fixture
def webhooks_client(make_client):
    return make_client(vendors={"generic": {"auth": [{"scheme": "standard_webhooks",
                                                      "secret": f"whsec_{WEBHOOK_KEY}"}]}})


def test_standard_webhooks_correct_signature_is_accepted(webhooks_client, published):
    body = json.dumps(GENERIC_RECEIPT).encode()
    headers = webhook_headers(body)
    headers["webhook-signature"] = "v1,d3JvbmcK " + headers["webhook-signature"]  # key rotation: any v1 may match
    response = webhooks_client.post(GENERIC_RECEIPTS, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200, response.get_json()
    assert published.events("sms.delivery-receipts")[0].payload.signature_valid is True


@pytest.mark.parametrize("case", ["missing", "wrong key", "tampered body", "stale timestamp", "wrong version"])
def test_standard_webhooks_refuses_bad_signatures(webhooks_client, case):
    body = json.dumps(GENERIC_RECEIPT).encode()
    headers = {
        "missing": {},
        "wrong key": webhook_headers(body, key=base64.b64encode(b"another-key").decode()),
        "tampered body": webhook_headers(body),
        "stale timestamp": webhook_headers(body, timestamp=time.time() - 3600),
        "wrong version": {**webhook_headers(body),
                          "webhook-signature": webhook_headers(body)["webhook-signature"].replace("v1,", "v2,")},
    }[case]
    sent = body.replace(b"delivered", b"failed") if case == "tampered body" else body
    assert_unauthorized(webhooks_client.post(GENERIC_RECEIPTS, data=sent, content_type="application/json",
                                             headers=headers))


# --- vonage_signature (md5hash by default; HMAC methods) -------------------------------------------------------


@pytest.fixture
def vonage_client(make_client):
    return make_client(vendors={"vonage": {"auth": [{"scheme": "vonage_signature", "secret": VONAGE_SECRET}]}})


@pytest.mark.parametrize("how", ["get", "json"])
def test_vonage_signature_correct_is_accepted(vonage_client, published, how):
    params = vonage_signed(VONAGE_MO)
    if how == "get":
        response = vonage_client.get(f"{VONAGE_INBOUND}?{urlencode(params)}")
    else:
        response = vonage_client.post(VONAGE_INBOUND, json=params)
    assert response.status_code == 200, response.get_json()
    assert published.events("sms.inbound-messages")[0].payload.signature_valid is True


def test_vonage_signature_correct_form_is_accepted_for_ascii_text(vonage_client):
    params = vonage_signed(dict(VONAGE_MO, text="Hi there", type="text"))
    assert vonage_client.post(VONAGE_INBOUND, data=params).status_code == 200


def test_vonage_signature_correct_form_is_accepted_for_non_ascii_text(vonage_client):
    assert vonage_client.post(VONAGE_INBOUND, data=vonage_signed(VONAGE_MO)).status_code == 200


@pytest.mark.parametrize("case", ["missing", "wrong secret", "tampered parameter", "stale timestamp", "no timestamp"])
def test_vonage_signature_refuses_bad_signatures(vonage_client, case):
    params = {
        "missing": VONAGE_MO,
        "wrong secret": vonage_signed(VONAGE_MO, secret="other-secret"),
        "tampered parameter": dict(vonage_signed(VONAGE_MO), text="Hi tampered"),
        "stale timestamp": vonage_signed(VONAGE_MO, timestamp=time.time() - 3600),
        "no timestamp": {k: v for k, v in vonage_signed(VONAGE_MO).items() if k != "timestamp"},
    }[case]
    assert_unauthorized(vonage_client.get(f"{VONAGE_INBOUND}?{urlencode(params)}"))


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
def test_vonage_signature_hmac_methods(make_client, method):
    client = make_client(vendors={"vonage": {"auth": [
        {"scheme": "vonage_signature", "secret": VONAGE_SECRET, "method": method}]}})
    assert client.get(f"{VONAGE_INBOUND}?{urlencode(vonage_signed(VONAGE_MO, method=method))}").status_code == 200
    assert client.post(VONAGE_INBOUND, data=vonage_signed(VONAGE_MO, method=method)).status_code == 200
    # another method's signature, a wrong secret and a tampered parameter are all refused
    other = "sha256" if method != "sha256" else "sha1"
    for params in (vonage_signed(VONAGE_MO, method=other), vonage_signed(VONAGE_MO, method="md5hash"),
                   vonage_signed(VONAGE_MO, secret="other-secret", method=method),
                   dict(vonage_signed(VONAGE_MO, method=method), text="Hi tampered")):
        assert_unauthorized(client.get(f"{VONAGE_INBOUND}?{urlencode(params)}"))


# --- basic, bearer, url_token -------------------------------------------------------------------------------------


def test_basic_auth(make_client):
    client = make_client(vendors={"generic": {"auth": [{"scheme": "basic", "username": "acme", "password": "pw-1"}]}})
    assert client.post(GENERIC_RECEIPTS, json=GENERIC_RECEIPT, headers=basic("acme", "pw-1")).status_code == 200
    for headers in ({}, basic("acme", "pw-2"), basic("other", "pw-1"), {"Authorization": "Basic %%%"},
                    {"Authorization": "Bearer pw-1"}):
        assert_unauthorized(client.post(GENERIC_RECEIPTS, json=GENERIC_RECEIPT, headers=headers))


def test_bearer_auth(make_client, published):
    client = make_client(vendors={"generic": {"auth": [{"scheme": "bearer", "token": "tok-1"}]}})
    response = client.post(GENERIC_RECEIPTS, json=GENERIC_RECEIPT, headers={"Authorization": "Bearer tok-1"})
    assert response.status_code == 200
    assert published.events("sms.delivery-receipts")[0].payload.signature_valid is None  # nothing was signed
    for headers in ({}, {"Authorization": "Bearer tok-2"}, {"Authorization": "tok-1"}, basic("x", "tok-1")):
        assert_unauthorized(client.post(GENERIC_RECEIPTS, json=GENERIC_RECEIPT, headers=headers))


@pytest.fixture
def token_client(make_client):
    return make_client(vendors={"vonage": {"auth": [{"scheme": "url_token", "token": "url-secret-1"}]}})


def test_url_token_as_path_segment_and_as_query_parameter(token_client):
    query = urlencode(VONAGE_MO)
    assert token_client.get(f"{VONAGE_INBOUND}/url-secret-1?{query}").status_code == 200
    assert token_client.get(f"{VONAGE_INBOUND}?{query}&token=url-secret-1").status_code == 200
    assert token_client.post(f"{VONAGE_INBOUND}/url-secret-1", json=VONAGE_MO).status_code == 200
    assert token_client.post(f"{VONAGE_INBOUND}?token=url-secret-1", data=VONAGE_MO).status_code == 200


@pytest.mark.parametrize("suffix", ["", "/url-secret-2", "?token=url-secret-2", "?token=", "/url-secret-"])
def test_url_token_missing_or_wrong_is_401(token_client, suffix):
    assert_unauthorized(token_client.post(VONAGE_INBOUND + suffix, json=VONAGE_MO))


# --- ip_allow_list and trusted proxy hops -------------------------------------------------------------------------


def ip_client(make_client, hops: int):
    return make_client(trusted_proxy_hops=hops,
                       vendors={"generic": {"auth": [{"scheme": "ip_allow_list", "allow": ["203.0.113.0/24"]}]}})


def post_from(client, remote: str, forwarded: str | None = None):
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return client.post(GENERIC_RECEIPTS, json=GENERIC_RECEIPT, headers=headers, environ_base={"REMOTE_ADDR": remote})


def test_ip_allow_list_behind_one_trusted_proxy(make_client):
    client = ip_client(make_client, hops=1)
    assert post_from(client, "10.0.0.5", "203.0.113.7").status_code == 200
    # the vendor's own X-Forwarded-For entry is beyond the one trusted hop: only the proxy's entry counts
    assert_unauthorized(post_from(client, "10.0.0.5", "203.0.113.7, 198.51.100.9"))
    assert_unauthorized(post_from(client, "10.0.0.5"))  # no header: the proxy's own address
    assert_unauthorized(post_from(client, "203.0.113.9", "198.51.100.9"))  # allowed proxy, disallowed client


def test_ip_allow_list_without_proxies_ignores_x_forwarded_for(make_client):
    client = ip_client(make_client, hops=0)
    assert post_from(client, "203.0.113.7").status_code == 200
    assert_unauthorized(post_from(client, "198.51.100.9", "203.0.113.7"))


def test_ip_allow_list_with_two_hops_uses_the_second_entry_from_the_right(make_client):
    client = ip_client(make_client, hops=2)
    assert post_from(client, "10.0.0.5", "198.51.100.1, 203.0.113.7, 10.0.0.4").status_code == 200
    assert_unauthorized(post_from(client, "10.0.0.5", "203.0.113.7, 198.51.100.1, 10.0.0.4"))


# --- per-account credentials --------------------------------------------------------------------------------------


@pytest.fixture
def accounts_client(make_client):
    return make_client(public_base_url=PUBLIC_BASE, vendors={
        "sinch": {"auth": [{"scheme": "sinch_hmac", "secret": SINCH_SECRET}],
                  "accounts": {"eu": {"auth": [{"scheme": "sinch_hmac", "secret": "eu-secret"}]}}},
        "twilio": {"auth": [{"scheme": "twilio_signature", "secret": TWILIO_TOKEN}],
                   "accounts": {"us": {"auth": [{"scheme": "twilio_signature", "secret": "us-token"}],
                                       "account_ids": ["AC00000000000000000000000000000001"]}}},
    })


def test_account_parameter_selects_that_accounts_secret(accounts_client, published):
    body = json.dumps(SINCH_REPORT).encode()
    eu = accounts_client.post(SINCH_RECEIPTS + "?account=eu", data=body, content_type="application/json",
                              headers=sinch_headers(body, secret="eu-secret"))
    assert eu.status_code == 200
    assert published.events("sms.delivery-receipts")[0].payload.account == "eu"
    assert_unauthorized(accounts_client.post(SINCH_RECEIPTS + "?account=eu", data=body,
                                             content_type="application/json", headers=sinch_headers(body)))
    assert_unauthorized(accounts_client.post(SINCH_RECEIPTS, data=body, content_type="application/json",
                                             headers=sinch_headers(body, secret="eu-secret")))
    unknown = accounts_client.post(SINCH_RECEIPTS + "?account=asia", data=body, content_type="application/json",
                                   headers=sinch_headers(body))
    assert unknown.status_code == 404


def test_account_ids_of_the_selected_account_apply(accounts_client):
    url = f"{PUBLIC_BASE}{TWILIO_RECEIPTS}?account=us"

    def post(params):
        return accounts_client.post(TWILIO_RECEIPTS + "?account=us", data=params,
                                    headers={"X-Twilio-Signature": twilio_signature(url, params, token="us-token")})

    assert post(TWILIO_STATUS).status_code == 200
    other = post(dict(TWILIO_STATUS, AccountSid="AC99999999999999999999999999999999"))
    assert other.status_code == 403 and other.get_json()["code"] == "unknown_account"


# --- what reaches the rejected topic ------------------------------------------------------------------------------


def test_401s_are_not_recorded_but_a_later_400_is(sinch_client, token_client, published):
    body = json.dumps(SINCH_REPORT).encode()
    assert_unauthorized(sinch_client.post(SINCH_RECEIPTS, data=body, content_type="application/json"))
    assert_unauthorized(sinch_client.post(SINCH_RECEIPTS, data=b"{broken", content_type="application/json"))
    assert_unauthorized(token_client.post(VONAGE_INBOUND + "/wrong", json=VONAGE_MO))
    bad = b'{"type":"recipient_delivery_report_sms"}'
    invalid = sinch_client.post(SINCH_RECEIPTS, data=bad, content_type="application/json",
                                headers=sinch_headers(bad))
    assert invalid.status_code == 400
    rejected = published.rejected()
    assert len(rejected) == 1 and rejected[0]["request_id"] == invalid.get_json()["request_id"]


@pytest.mark.parametrize("where", ["path", "query"])
def test_secrets_never_reach_the_rejected_record(make_client, published, where):
    # sinch: a vendor that can send both a URL token and a bearer token
    client = make_client(vendors={"sinch": {"auth": [{"scheme": "url_token", "token": "url-secret-1"},
                                                     {"scheme": "bearer", "token": "bearer-secret-1"}]}})
    path = f"{SINCH_RECEIPTS}/url-secret-1" if where == "path" else f"{SINCH_RECEIPTS}?token=url-secret-1"
    # no batch id: a receipt that cannot exist, so a 400 and a rejected record
    response = client.post(path, json={k: v for k, v in SINCH_REPORT.items() if k != "batch_id"},
                           headers={"Authorization": "Bearer bearer-secret-1"})
    assert response.status_code == 400 and response.get_json()["code"] == "syntax_constraint_violation"
    [record] = published.records("sms.callbacks.rejected")
    value = json.loads(record.value)
    assert b"url-secret-1" not in record.value and b"bearer-secret-1" not in record.value
    assert not any(b"secret" in header_value for _, header_value in record.headers)
    assert "authorization" not in {name.lower() for name in value["headers"]}
    if where == "path":
        assert value["path"] == f"{SINCH_RECEIPTS}/<redacted>"
    else:
        assert value["path"] == SINCH_RECEIPTS and value["query"] == "token=<redacted>"


def test_signature_headers_never_reach_the_rejected_record(sinch_client, published):
    bad = b'{"type":"recipient_delivery_report_sms"}'
    headers = sinch_headers(bad)
    assert sinch_client.post(SINCH_RECEIPTS, data=bad, content_type="application/json",
                             headers=headers).status_code == 400
    [record] = published.records("sms.callbacks.rejected")
    assert headers["X-Sinch-Webhook-Signature"].encode() not in record.value
    assert json.loads(record.value)["body_base64"] == base64.b64encode(bad).decode()  # the body is kept for replay
