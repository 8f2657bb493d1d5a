"""Auth settings: each vendor takes only the schemes its software can send, secrets are lists for rotation and
never blank, accounts inherit their vendor's checks, and config check can count secrets without showing them.

Fixtures: plain settings tables; what each vendor can send is from its software (Jasmin's thrower in
jookies/jasmin routing/throwers.py passes no credentials with its callbacks)."""

from __future__ import annotations

import pytest

from core.settings import ConfigError, load_settings, secret_counts
from receiver.vendors import auth_catalog
from tests.conftest import git_root


def load(vendors: dict):
    return load_settings({}, overrides={"vendors": vendors}, vendors=auth_catalog())


def test_jasmin_cannot_be_configured_with_basic_credentials():
    with pytest.raises(ConfigError, match=r"vendors\.jasmin\.auth\[0\]\.scheme: jasmin cannot send 'basic'"):
        load({"jasmin": {"auth": [{"scheme": "basic", "username": "jasmin", "password": "pw"}]}})
    with pytest.raises(ConfigError, match=r"vendors\.jasmin\.accounts\.eu\.auth\[0\]\.scheme"):
        load({"jasmin": {"accounts": {"eu": {"auth": [{"scheme": "bearer", "token": "t"}]}}}})
    assert load({"jasmin": {"auth": [{"scheme": "url_token", "token": "t"}]}}).vendor("jasmin").auth


@pytest.mark.parametrize(("vendor", "scheme"), [("twilio", "sinch_hmac"), ("vonage", "bearer"),
                                                 ("mobivate", "basic"), ("twilio", "ip_allow_list")])
def test_a_scheme_the_vendor_cannot_send_stops_the_start(vendor, scheme):
    assert scheme not in auth_catalog()[vendor]
    with pytest.raises(ConfigError, match=f"{vendor} cannot send"):
        load({vendor: {"auth": [{"scheme": scheme, "secret": "s", "token": "t", "password": "p",
                                 "allow": ["192.0.2.1"]}]}})


def test_the_example_file_offers_each_vendor_only_what_it_can_send():
    settings = load_settings({"SMSHOOKS_CONFIG": str(git_root() / "config.example.toml")}, vendors=auth_catalog())
    for name, vendor in settings.vendors.items():
        assert {s.scheme for s in vendor.auth} <= set(auth_catalog()[name]), name


@pytest.mark.parametrize(("auth", "key"), [
    ({"scheme": "sinch_hmac", "secret": "   "}, r"auth\[0\]\.secret: a secret must not be empty or only whitespace"),
    ({"scheme": "sinch_hmac", "secret": "s", "secrets": ["\t"]}, r"auth\[0\]\.secrets\[0\]"),
    ({"scheme": "sinch_hmac", "secret": "s", "secrets": [""]}, r"auth\[0\]\.secrets\[0\]"),
    ({"scheme": "bearer", "token": " \n"}, r"auth\[0\]\.token"),
    ({"scheme": "basic", "username": "u", "password": "  "}, r"auth\[0\]\.password"),
    ({"scheme": "sinch_hmac", "secrets": "s", "tokens": 3}, r"auth\[0\]\.tokens: expected a string or a list"),
])
def test_blank_secrets_are_refused_naming_the_key(auth, key):
    with pytest.raises(ConfigError, match=key):
        load({"sinch": {"auth": [auth]}})


def test_whitespace_only_twilio_subaccount_token_is_refused():
    with pytest.raises(ConfigError, match=r"account_secrets\.AC1\[0\]"):
        load({"twilio": {"auth": [{"scheme": "twilio_signature", "account_secrets": {"AC1": " "}}]}})
    with pytest.raises(ConfigError, match=r"account_secrets: only the twilio_signature"):
        load({"sinch": {"auth": [{"scheme": "sinch_hmac", "secret": "s", "account_secrets": {"x": "y"}}]}})


def test_a_standard_webhooks_secret_that_is_not_base64_is_refused_at_start():
    with pytest.raises(ConfigError, match=r"auth\[0\]\.secret: not a base64 key"):
        load({"generic": {"auth": [{"scheme": "standard_webhooks", "secret": "whsec_not base64!"}]}})
    with pytest.raises(ConfigError, match=r"auth\[0\]\.secrets\[0\]: not a base64 key"):
        load({"generic": {"auth": [{"scheme": "standard_webhooks", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                    "secrets": ["abcde"]}]}})


def test_accounts_without_auth_inherit_and_with_auth_replace():
    vendor = load({"sinch": {"auth": [{"scheme": "sinch_hmac", "secret": "vendor"}], "accounts": {
        "inherits": {"account_ids": ["a"]}, "own": {"auth": [{"scheme": "bearer", "token": "t"}]},
        "none": {"auth": []}}}}).vendor("sinch")
    assert vendor.accounts["inherits"].auth == vendor.auth
    assert [s.scheme for s in vendor.accounts["own"].auth] == ["bearer"]
    assert vendor.accounts["none"].auth == ()  # an explicit empty list is the operator's choice
    with pytest.raises(ConfigError, match=r"vendors\.sinch\.accounts\.eu\.auht: unknown key"):
        load({"sinch": {"accounts": {"eu": {"auht": []}}}})


def test_secret_counts_show_how_many_never_which():
    settings = load({
        "twilio": {"auth": [{"scheme": "twilio_signature", "secret": "tok-new", "secrets": ["tok-old"],
                             "account_secrets": {"AC2": ["sub-new", "sub-old"]}}],
                   "accounts": {"us": {}}},
        "generic": {"auth": [{"scheme": "bearer", "token": "b"}, {"scheme": "ip_allow_list", "allow": ["10.0.0.0/8"]}]},
    })
    counts = secret_counts(settings)
    assert counts == {"generic": {"bearer": 1, "ip_allow_list": 0}, "twilio": {"twilio_signature": 4},
                      "twilio.accounts.us": {"twilio_signature": 4}}
    assert not any(secret in repr(counts) for secret in ("tok-new", "tok-old", "sub-new", "sub-old", "b'"))
