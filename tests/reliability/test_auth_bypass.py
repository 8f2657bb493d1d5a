"""Auth bypass attempts on every credentialed route: missing, misplaced, stale and replayed credentials, spoofed
client addresses, and constant-time comparison of secrets."""

from __future__ import annotations

import hmac
import json
import statistics
import time
from urllib.parse import urlencode

import pytest

import receiver.auth
from processors.db import upgrade
from receiver.vendors import auth_catalog, load_adapters
from tests.receiver.conftest import client_maker
from tests.receiver.test_auth import (
    GENERIC_RECEIPT,
    SINCH_REPORT,
    VONAGE_MO,
    WEBHOOK_KEY,
    basic,
    sinch_headers,
    vonage_signed,
    webhook_headers,
)

SECRET = "s3cret-value-0123456789abcdef"
SCHEMES = auth_catalog()  # what each vendor can offer (README), checked at start
API_TOKEN = "api-token-0123456789abcdef"
READ_ROUTES = ["/v1/reports/reconciliation", "/v1/messages/twilio/SM1", "/v1/opt-outs/447700900123?sender=60777",
               "/v1/opt-outs"]


def scheme_settings(scheme: str, tolerance: int = 300) -> dict:
    """One auth scheme's configuration with test secrets."""
    settings = {"scheme": scheme, "secret": WEBHOOK_KEY if scheme == "standard_webhooks" else SECRET,
                "token": SECRET, "username": "user", "password": SECRET, "allow": ["203.0.113.0/24"],
                "tolerance_seconds": tolerance}
    if scheme == "telnyx_signature":
        settings["public_key"] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # 32 bytes: an Ed25519 public key
    return settings


def routes() -> list[tuple[str, str, str, str]]:
    """(vendor, scheme, kind, method) for every vendor, scheme it offers, kind and method."""
    adapters = load_adapters()
    return [(vendor, scheme, kind, method) for vendor, schemes in SCHEMES.items() for scheme in schemes
            for kind, spec in adapters[vendor].kinds.items() for method in spec.methods]


def send(client, vendor: str, kind: str, method: str, headers=None, suffix: str = "", body_extra=None):
    """A plausible callback with no (or the given) credentials."""
    path = f"/v1/callbacks/{vendor}/{kind}{suffix}"
    fields = {"message_id": "m-1", "status": "delivered", "sig": "0" * 32, **(body_extra or {})}
    spec = load_adapters()[vendor].kinds[kind]
    if method == "GET":  # (?token= is where a URL token legitimately goes)
        return client.get(path + ("&" if "?" in path else "?") + urlencode(fields), headers=headers or {})
    fields["token"] = SECRET  # a URL token in the body is not a URL token
    if "json" in spec.formats:
        return client.post(path, data=json.dumps(fields), content_type="application/json", headers=headers or {})
    return client.post(path, data=fields, headers=headers or {})


def assert_refused(response, allowed=(401,)) -> None:
    assert response.status_code in allowed, (response.status_code, response.get_data()[:200])
    body = response.get_json()
    assert body["code"] in ("unauthorized", "read_api_disabled") and body["request_id"]


@pytest.mark.parametrize("vendor,scheme", [(v, s) for v, schemes in SCHEMES.items() for s in schemes])
def test_every_vendor_route_refuses_missing_and_misplaced_credentials(make_client, vendor, scheme):
    client = make_client(vendors={vendor: {"auth": [scheme_settings(scheme)]}})
    attempts = 0
    for v, s, kind, method in routes():
        if (v, s) != (vendor, scheme):
            continue
        # none at all; the secret in the body or the wrong header; a wrong path token; a forwarded allowed address
        assert_refused(send(client, vendor, kind, method))
        assert_refused(send(client, vendor, kind, method, headers={"X-Token": SECRET, "X-Api-Key": SECRET}))
        assert_refused(send(client, vendor, kind, method, suffix="/not-the-token"))
        assert_refused(send(client, vendor, kind, method, headers={"X-Forwarded-For": "203.0.113.7",
                                                                   "X-Real-IP": "203.0.113.7",
                                                                   "Forwarded": "for=203.0.113.7"}))
        assert_refused(send(client, vendor, kind, method, headers={"Authorization": f"Bearer {SECRET[:-1]}"}))
        assert_refused(send(client, vendor, kind, method, headers=basic("user", SECRET + "x")))
        attempts += 6
    assert attempts >= 6


def test_account_without_its_own_credentials_is_refused(make_client):
    client = make_client(vendors={"generic": {"accounts": {"eu": {"auth": [scheme_settings("bearer")]}}}})
    assert_refused(client.post("/v1/callbacks/generic/delivery-receipts?account=eu", json=GENERIC_RECEIPT))
    ok = client.post("/v1/callbacks/generic/delivery-receipts?account=eu", json=GENERIC_RECEIPT,
                     headers={"Authorization": f"Bearer {SECRET}"})
    assert ok.status_code == 200


def test_signed_requests_replayed_beyond_the_tolerance_window_are_refused(make_client):
    client = make_client(public_base_url="https://hooks.example.com", vendors={
        "sinch": {"auth": [scheme_settings("sinch_hmac", tolerance=2)]},
        "generic": {"auth": [scheme_settings("standard_webhooks", tolerance=2)]},
        "vonage": {"auth": [scheme_settings("vonage_signature", tolerance=2)]},
    })
    # the first publish starts the producer and checks topics: done before the clock of the window starts
    warm_body = json.dumps(GENERIC_RECEIPT).encode()
    assert client.post("/v1/callbacks/generic/delivery-receipts", data=warm_body, content_type="application/json",
                       headers=webhook_headers(warm_body)).status_code == 200
    sinch_body = json.dumps(SINCH_REPORT).encode()
    generic_body = json.dumps(GENERIC_RECEIPT).encode()
    captured = [
        ("POST", "/v1/callbacks/sinch/delivery-receipts", sinch_body, sinch_headers(sinch_body, secret=SECRET)),
        ("POST", "/v1/callbacks/generic/delivery-receipts", generic_body, webhook_headers(generic_body)),
        ("GET", "/v1/callbacks/vonage/inbound-messages?" + urlencode(vonage_signed(VONAGE_MO, secret=SECRET)), b"",
         {}),
    ]

    def replay(method, path, body, headers):
        return client.open(path, method=method, data=body, headers=headers,
                           content_type="application/json" if body else None)

    for request in captured:
        assert replay(*request).status_code == 200, request[1]  # fresh: accepted (a retry yields the same ce_id)
    time.sleep(4.5)  # signed timestamps are whole seconds: at least 4.5 s old now, against a 2 s window
    for request in captured:
        assert_refused(replay(*request))  # the same bytes later: outside the window
    stale, future = time.time() - 3600, time.time() + 3600
    for stamp in (stale, future):
        assert_refused(client.post("/v1/callbacks/sinch/delivery-receipts", data=sinch_body,
                                   content_type="application/json",
                                   headers=sinch_headers(sinch_body, secret=SECRET, timestamp=stamp)))
        assert_refused(client.post("/v1/callbacks/generic/delivery-receipts", data=generic_body,
                                   content_type="application/json", headers=webhook_headers(generic_body,
                                                                                            timestamp=stamp)))


@pytest.mark.parametrize("hops", [0, 1, 2])
def test_spoofed_forwarded_addresses_beyond_the_trusted_hops_are_ignored(make_client, hops):
    client = make_client(trusted_proxy_hops=hops, vendors={"generic": {"auth": [scheme_settings("ip_allow_list")]}})
    proxies = ["10.0.0.4", "10.0.0.5"][:max(0, hops - 1)]
    for spoof in (["203.0.113.7"] + ["198.51.100.1"] * hops, ["203.0.113.7"] * 5 + ["198.51.100.1"] * hops):
        chain = ", ".join(spoof[: len(spoof) - hops] + [] if hops == 0 else spoof + proxies)
        response = client.post("/v1/callbacks/generic/delivery-receipts", json=GENERIC_RECEIPT,
                               headers={"X-Forwarded-For": chain, "X-Real-IP": "203.0.113.7",
                                        "Forwarded": "for=203.0.113.7", "True-Client-IP": "203.0.113.7"},
                               environ_base={"REMOTE_ADDR": "10.0.0.9"})
        assert_refused(response)


def test_per_source_rate_limit_is_not_evaded_by_rotating_x_forwarded_for(make_client):
    client = make_client(rate_limit_per_source="5/minute", rate_limit_per_vendor="1000/second")
    statuses = [client.post("/v1/callbacks/generic/delivery-receipts", json=dict(GENERIC_RECEIPT, message_id=f"r{n}"),
                            headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code for n in range(8)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429] * 3


@pytest.fixture
def whole_app(broker, topic_prefix, sqlite_url):
    """Build the whole app (receiver, sent messages, read API) with overrides, against the real broker."""
    from app import create_app

    upgrade(sqlite_url)
    with client_maker(create_app, kafka_bootstrap_servers=broker.bootstrap_servers, topic_prefix=topic_prefix,
                      database_url=sqlite_url) as make:
        yield make


@pytest.fixture
def api_client(whole_app):
    return whole_app(api_token=API_TOKEN)


WRONG_TOKENS = [
    {}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer "},
    {"Authorization": f"Bearer {API_TOKEN[:-1]}"}, {"Authorization": f"Bearer {API_TOKEN}x"},
    {"Authorization": f"Bearer x{API_TOKEN}"}, {"Authorization": f"Basic {API_TOKEN}"}, {"Authorization": API_TOKEN},
    {"Authorization": f"Token {API_TOKEN}"}, {"X-Api-Key": API_TOKEN}, {"Cookie": f"token={API_TOKEN}"},
    {"Authorization": f"Bearer {API_TOKEN.upper()}"},
]


def test_sent_messages_and_read_api_refuse_anything_but_the_bearer_token(api_client):
    sent = {"vendor": "twilio", "message_id": "SM1", "recipient": "+447700900123"}
    for headers in WRONG_TOKENS:
        assert_refused(api_client.post("/v1/sent-messages", json=sent, headers=headers))
        assert_refused(api_client.post(f"/v1/sent-messages?token={API_TOKEN}", json=sent, headers=headers))
        for route in READ_ROUTES:
            assert_refused(api_client.get(route, headers=headers))
            assert_refused(api_client.get(route + ("&" if "?" in route else "?") + f"token={API_TOKEN}",
                                          headers=headers))
    good = {"Authorization": f"Bearer {API_TOKEN}"}
    assert api_client.post("/v1/sent-messages", json=sent, headers=good).status_code == 200
    assert all(api_client.get(route, headers=good).status_code != 401 for route in READ_ROUTES)


def test_read_api_without_a_configured_token_answers_nobody(whole_app):
    client = whole_app()
    for route in READ_ROUTES:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer anything"}):
            response = client.get(route, headers=headers)
            assert response.status_code == 503 and response.get_json()["code"] == "read_api_disabled"


def test_every_secret_comparison_goes_through_compare_digest(api_client, make_client, monkeypatch):
    seen = []
    real = hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    vendor = make_client(vendors={"generic": {"auth": [scheme_settings("bearer")]}})
    vendor.post("/v1/callbacks/generic/delivery-receipts", json=GENERIC_RECEIPT, headers={"Authorization": "Bearer w1"})
    api_client.post("/v1/sent-messages", json={}, headers={"Authorization": "Bearer w2"})
    api_client.get("/v1/opt-outs", headers={"Authorization": "Bearer w3"})
    presented = {value if isinstance(value, bytes) else value.encode() for pair in seen for value in pair}
    assert {b"w1", b"w2", b"w3"} <= presented, seen


def first_vs_last(compare, size: int, calls: int, rounds: int = 31) -> float:
    """Median over interleaved rounds of (time with the last byte wrong) / (time with the first byte wrong)."""
    secret = b"k" * size
    first, last = b"x" + secret[1:], secret[:-1] + b"x"
    ratios = []
    for _ in range(rounds):
        times = []
        for candidate in (first, last):
            started = time.perf_counter()
            for _ in range(calls):
                compare(secret, candidate)
            times.append(time.perf_counter() - started)
        ratios.append(times[1] / times[0])
    return statistics.median(ratios)


def test_secret_comparison_time_does_not_depend_on_where_the_guess_is_wrong():
    # the measurement can fail: a plain == on long secrets is measurably faster when the first byte differs
    naive = first_vs_last(lambda a, b: a == b, 1 << 20, 10)
    assert naive > 3, f"the timing measurement cannot see an early-exit comparison (ratio {naive:.2f})"
    long = first_vs_last(receiver.auth.equal, 1 << 20, 10)
    short = first_vs_last(receiver.auth.equal, 64, 2000)
    print(f"\ntiming: naive == ratio {naive:.1f}, equal() ratio {long:.2f} (1 MiB), {short:.2f} (64 B)")
    assert 0.5 < long < 2, f"receiver.auth.equal on 1 MiB: last-byte/first-byte time ratio {long:.2f}"
    assert 0.5 < short < 2, f"receiver.auth.equal on 64-byte tokens: ratio {short:.2f}"


# --- accounts: inheritance and no enumeration -------------------------------------------------------------------

TWILIO_STATUS = {"MessageSid": "SM1f0e2d3c4b5a69788796a5b4c3d2e1f0", "MessageStatus": "delivered",
                 "AccountSid": "AC00000000000000000000000000000001", "To": "+447700900123", "From": "+15005550006"}


def test_an_account_without_auth_keeps_its_vendors_checks(make_client):
    from twilio.request_validator import RequestValidator

    client = make_client(public_base_url="https://hooks.example.com", vendors={"twilio": {
        "auth": [scheme_settings("twilio_signature")],
        "accounts": {"us": {"account_ids": [TWILIO_STATUS["AccountSid"]]}}}})
    path = "/v1/callbacks/twilio/delivery-receipts?account=us"
    assert_refused(client.post(path, data=TWILIO_STATUS))  # unsigned: was accepted and published
    signature = RequestValidator(SECRET).compute_signature("https://hooks.example.com" + path, TWILIO_STATUS)
    assert client.post(path, data=TWILIO_STATUS, headers={"X-Twilio-Signature": signature}).status_code == 200


def test_unknown_accounts_look_like_known_ones_without_credentials(make_client):
    client = make_client(vendors={"sinch": {"auth": [scheme_settings("sinch_hmac")],
                                            "accounts": {"eu": {"auth": [scheme_settings("sinch_hmac")]}}}})
    body = json.dumps(SINCH_REPORT).encode()
    for account in ("eu", "asia", "x" * 40):
        assert_refused(client.post(f"/v1/callbacks/sinch/delivery-receipts?account={account}", data=body,
                                   content_type="application/json"))
    # with the vendor's credentials an unknown account is named: a 404 the operator sees on the rejected topic
    unknown = client.post("/v1/callbacks/sinch/delivery-receipts?account=asia", data=body,
                          content_type="application/json", headers=sinch_headers(body, secret=SECRET))
    assert unknown.status_code == 404


def test_unknown_accounts_of_a_vendor_whose_only_checks_are_per_account(make_client):
    client = make_client(vendors={"generic": {"accounts": {"eu": {"auth": [scheme_settings("bearer")]}}}})
    for account in ("eu", "asia"):
        assert_refused(client.post(f"/v1/callbacks/generic/delivery-receipts?account={account}",
                                   json=GENERIC_RECEIPT))


# --- trusted proxy hops with no proxy in front ------------------------------------------------------------------


def test_forwarded_requests_straight_from_the_internet_are_warned_about_once(make_client, caplog):
    client = make_client(trusted_proxy_hops=1)
    caplog.set_level("WARNING", logger="receiver.proxies")
    send = lambda remote: client.post(  # noqa: E731
        "/v1/callbacks/generic/delivery-receipts", json=GENERIC_RECEIPT, headers={"X-Forwarded-For": "192.0.2.1"},
        environ_base={"REMOTE_ADDR": remote})
    assert send("10.0.0.5").status_code == 200  # a proxy on our own network: as configured
    assert not [r for r in caplog.records if r.name == "receiver.proxies"]  # other loggers may warn (kafka)
    assert send("8.8.8.8").status_code == 200  # straight from the internet: the client chose its address
    assert send("8.8.4.4").status_code == 200
    warnings = [r for r in caplog.records if "TRUSTED_PROXY_HOPS" in r.getMessage()]
    assert len(warnings) == 1 and "no proxy" in warnings[0].getMessage()
