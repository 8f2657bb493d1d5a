"""Settings: the example file loads, documents every key, and bad values name the key."""

from __future__ import annotations

import dataclasses
import re

import pytest

from core.settings import ConfigError, Settings, load_settings
from receiver.vendors import auth_catalog
from tests.conftest import git_root

EXAMPLE = git_root() / "config.example.toml"


def test_example_file_loads_and_documents_every_setting():
    settings = load_settings({"SMSHOOKS_CONFIG": str(EXAMPLE)})
    assert settings.vendor("sinch").auth[0].scheme == "sinch_hmac"
    assert settings.vendor("sinch").accounts["eu"].auth[0].secret == "eu-secret"
    assert settings.missing_hours_for("fortytwo") == 48 and settings.missing_hours_for("sinch") == 72
    documented = set(re.findall(r"^(\w+) =", EXAMPLE.read_text(), re.M))
    every = {f.name for f in dataclasses.fields(Settings)} - {"vendors"}
    assert every <= documented, f"undocumented: {sorted(every - documented)}"


def test_environment_overrides_file():
    settings = load_settings({"SMSHOOKS_CONFIG": str(EXAMPLE), "SMSHOOKS_TOPIC_PARTITIONS": "12"})
    assert settings.topic_partitions == 12


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"SMSHOOKS_TOPIC_PARTITIONS": "many"}, "SMSHOOKS_TOPIC_PARTITIONS"),
        ({"SMSHOOKS_TOPIC_PARTITIONS": "0"}, "SMSHOOKS_TOPIC_PARTITIONS"),
        ({"SMSHOOKS_OPT_OUT_SCOPE": "galaxy"}, "SMSHOOKS_OPT_OUT_SCOPE"),
        ({"SMSHOOKS_RATE_LIMIT_PER_VENDOR": "lots"}, "SMSHOOKS_RATE_LIMIT_PER_VENDOR"),
        ({"SMSHOOKS_OPT_OUT_MATCH_IN_SENTENCE": "perhaps"}, "SMSHOOKS_OPT_OUT_MATCH_IN_SENTENCE"),
        ({"SMSHOOKS_CONFIG": "/nonexistent.toml"}, "SMSHOOKS_CONFIG"),
    ],
)
def test_invalid_values_name_the_key(environ, key):
    with pytest.raises(ConfigError, match=key):
        load_settings(environ)


@pytest.mark.parametrize(
    ("vendors", "key"),
    [
        ({"nobody": {}}, "vendors.nobody"),
        ({"sinch": {"auth": [{"scheme": "sinch_hmac"}]}}, r"vendors.sinch.auth\[0\].secret"),
        ({"sinch": {"auth": [{"scheme": "magic"}]}}, r"vendors.sinch.auth\[0\].scheme"),
        ({"fortytwo": {"auth": [{"scheme": "ip_allow_list", "allow": ["not-an-ip"]}]}}, "allow"),
        ({"jasmin": {"colour": "blue"}}, "vendors.jasmin.colour"),
        ({"vonage": {"auth": [{"scheme": "vonage_signature", "secret": "s", "method": "sha384"}]}},
         r"vendors.vonage.auth\[0\].method"),
        ({"sinch": {"auth": [{"scheme": "sinch_hmac", "secret": "s", "method": "sha256"}]}},
         r"vendors.sinch.auth\[0\].method"),
    ],
)
def test_invalid_vendor_tables_name_the_key(vendors, key):
    with pytest.raises(ConfigError, match=key):
        load_settings({}, overrides={"vendors": vendors}, vendors=auth_catalog())


def test_without_the_vendor_catalog_vendor_names_are_not_checked():
    """The processors load settings without knowing the vendors: a table they cannot judge is read as given."""
    settings = load_settings({}, overrides={"vendors": {"nobody": {"currency": "EUR"}}})
    assert settings.vendor("nobody").currency == "EUR"


def test_bad_toml_is_reported(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("topic_partitions = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"SMSHOOKS_CONFIG": str(path)})


def test_unknown_top_level_key_in_file(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text("topic_partitons = 3\n")
    with pytest.raises(ConfigError, match="topic_partitons"):
        load_settings({"SMSHOOKS_CONFIG": str(path)})
