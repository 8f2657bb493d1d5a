"""Configuration from SMSHOOKS_* environment variables and an optional TOML file, validated at start."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

ENV_PREFIX = "SMSHOOKS_"
AUTH_SCHEMES = {
    "sinch_hmac",
    "twilio_signature",
    "standard_webhooks",
    "vonage_signature",
    "sns_signature",
    "telnyx_signature",
    "plivo_signature",
    "basic",
    "bearer",
    "url_token",
    "ip_allow_list",
}
OPT_OUT_SCOPES = {"sender", "account"}


class ConfigError(ValueError):
    """Invalid configuration; the message names the offending key."""


@dataclass(frozen=True)
class AuthScheme:
    """One authentication check a vendor's callbacks must pass."""

    scheme: str
    secret: str = ""
    # more signing secrets accepted besides `secret`: the previous one while a secret is rotated
    secrets: tuple[str, ...] = ()
    username: str = ""
    password: str = ""
    token: str = ""
    tokens: tuple[str, ...] = ()  # more tokens accepted besides `token`, for rotation
    allow: tuple[str, ...] = ()
    tolerance_seconds: int = 300
    # vonage_signature only: the "signature method" chosen in the Vonage dashboard
    method: str = "md5hash"
    # twilio_signature only: (AccountSid, its auth tokens) for subaccounts, chosen by the callback's AccountSid
    account_secrets: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # sns_signature only: a regex of the hosts SigningCertURL and SubscribeURL may name (empty: SNS's own)
    host_pattern: str = ""
    # telnyx_signature only: the account's Ed25519 public key, base64, as Telnyx's portal shows it (not a secret)
    public_key: str = ""

    @property
    def signing_secrets(self) -> tuple[str, ...]:
        """`secret` then `secrets`: every key a callback may be signed with while a secret is rotated."""
        return tuple(dict.fromkeys(s for s in (self.secret, *self.secrets) if s))

    @property
    def accepted_tokens(self) -> tuple[str, ...]:
        """`token` then `tokens`: every bearer or URL token accepted while a token is rotated."""
        return tuple(dict.fromkeys(t for t in (self.token, *self.tokens) if t))

    def secret_count(self) -> int:
        """How many secrets this scheme holds (for `config check`, which never shows them)."""
        per_account = sum(len(tokens) for _, tokens in self.account_secrets)
        return len(self.signing_secrets) + len(self.accepted_tokens) + bool(self.password) + per_account


# Vonage's signature methods: md5 of the signed string plus the secret, or an HMAC of it keyed by the secret
VONAGE_SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
# sns_signature's default replay window: SNS retries for at most 3,600 s with the same signed Timestamp, plus skew
SNS_TOLERANCE_SECONDS = 3900
@dataclass(frozen=True)
class AccountSettings:
    """A vendor account with its own credentials, chosen by `?account=<name>`; without `auth` it has its vendor's."""

    name: str
    auth: tuple[AuthScheme, ...] = ()
    account_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class VendorSettings:
    """Per-vendor switches and secrets; every listed auth scheme must pass."""

    name: str
    enabled: bool = True
    auth: tuple[AuthScheme, ...] = ()
    account_ids: tuple[str, ...] = ()
    accounts: dict[str, AccountSettings] = field(default_factory=dict)
    missing_receipt_hours: float | None = None
    # what a callback gets while Kafka cannot ack: "spool" (kept durably, 200) or "retry" (503, the vendor retries)
    when_kafka_is_down: str = "spool"
    # the rate card: destination country (ISO 3166-1 alpha-2) -> (price per part, ISO 4217 currency)
    rates: dict[str, tuple[Decimal, str]] = field(default_factory=dict)
    # the currency of prices a vendor reports without naming one (Vonage bills in the account's currency)
    currency: str | None = None


@dataclass(frozen=True)
class Settings:
    """Every setting of smshooks; names map to SMSHOOKS_<NAME> environment variables."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    topic_partitions: int = 6
    topic_replication_factor: int = 1
    publish_timeout_seconds: float = 5.0
    # the edge spool: no ack within spool_after_seconds (or the producer down) -> durable local spool, then 200
    spool_enabled: bool = True
    spool_path: str = ""  # empty: <data_dir>/spool/receiver.sqlite3, one file shared by the host's workers
    spool_after_seconds: float = 1.0
    spool_max_bytes: int = 1_073_741_824
    spool_max_age_seconds: float = 7 * 24 * 3600.0
    kafka_producer: str = "auto"
    retry_after_seconds: int = 5
    max_body_bytes: int = 32768
    rate_limit_per_vendor: str = "2000/second"
    rate_limit_per_source: str = "500/second"
    rate_limit_storage_uri: str = "memory://"
    trusted_proxy_hops: int = 0
    public_base_url: str = ""
    database_url: str = ""
    data_dir: str = "data"
    api_token: str = ""
    consumer_max_poll_interval_ms: int = 300000
    consumer_session_timeout_ms: int = 10000
    consumer_heartbeat_interval_ms: int = 1000
    consumer_max_poll_records: int = 500
    consumer_poll_timeout_ms: int = 200
    missing_receipt_hours: float = 72.0
    unmatched_receipt_hours: float = 24.0
    sweep_interval_seconds: float = 300.0
    opt_out_scope: str = "sender"
    opt_out_locales: str = "en,fr,es,de"
    opt_out_match_in_sentence: bool = False
    # business days a sender may take to honour an opt-out (the FCC's 2025 outer limit is 10; 0 = zero tolerance)
    opt_out_grace_business_days: int = 10
    log_level: str = "INFO"
    metrics_port: int = 9102
    metrics_bind: str = "127.0.0.1"
    metrics_token: str = ""
    vendors: dict[str, VendorSettings] = field(default_factory=dict)

    @property
    def effective_database_url(self) -> str:
        """SQLite under the data directory unless a URL is configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'smshooks.db'}"

    @property
    def effective_spool_path(self) -> str:
        """The spool file, or empty when spooling is off."""
        if not self.spool_enabled:
            return ""
        return self.spool_path or str(Path(self.data_dir).resolve() / "spool" / "receiver.sqlite3")

    def vendor(self, name: str) -> VendorSettings:
        """Settings for one vendor, defaults when the file says nothing about it."""
        return self.vendors.get(name) or VendorSettings(name=name)

    def missing_hours_for(self, vendor: str) -> float:
        """Age after which a sent message without a final status counts as missing its receipt."""
        override = self.vendor(vendor).missing_receipt_hours
        return self.missing_receipt_hours if override is None else override


def _coerce(key: str, kind: Any, value: Any) -> Any:
    """Turn an environment string or TOML value into the field's type, or name the key in the error."""
    try:
        if kind in (bool, "bool"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        if kind in (int, "int"):
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind in (float, "float"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind in (str, "str"):
            if not isinstance(value, str | int | float):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}") from None
    raise ConfigError(f"{key}: unsupported setting")


def _texts(key: str, value: Any) -> tuple[str, ...]:
    """A string or a list of strings (one secret, or the current and previous ones) as a tuple."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{key}: expected a string or a list of strings")
    return tuple(values)


def _auth_list(where: str, items: Any, vendor: str,
               catalog: Mapping[str, tuple[str, ...]] | None) -> tuple[AuthScheme, ...]:
    """Parse a list of auth tables; each scheme must be one the vendor can really satisfy."""
    if not isinstance(items, list):
        raise ConfigError(f"{where}.auth: expected a list of tables")
    schemes = []
    known = {f.name for f in dataclasses.fields(AuthScheme)}
    for index, item in enumerate(items):
        key = f"{where}.auth[{index}]"
        if not isinstance(item, dict) or "scheme" not in item:
            raise ConfigError(f"{key}: expected a table with a 'scheme'")
        unknown = set(item) - known
        if unknown:
            raise ConfigError(f"{key}.{sorted(unknown)[0]}: unknown key")
        if item["scheme"] not in AUTH_SCHEMES:
            raise ConfigError(f"{key}.scheme: {item['scheme']!r} is not one of {sorted(AUTH_SCHEMES)}")
        offered = catalog.get(vendor, tuple(AUTH_SCHEMES)) if catalog is not None else tuple(AUTH_SCHEMES)
        if item["scheme"] not in offered:
            raise ConfigError(f"{key}.scheme: {vendor} cannot send {item['scheme']!r} credentials; "
                              f"it can use {', '.join(offered)}")
        values = dict(item)
        if "allow" in values:
            values["allow"] = tuple(str(a) for a in values["allow"])
        for name in ("secrets", "tokens"):
            if name in values:
                values[name] = _texts(f"{key}.{name}", values[name])
        if "account_secrets" in values:
            table = values["account_secrets"]
            if not isinstance(table, dict):
                raise ConfigError(f"{key}.account_secrets: expected a table of AccountSid = auth token(s)")
            values["account_secrets"] = tuple(
                (sid, _texts(f"{key}.account_secrets.{sid}", tokens)) for sid, tokens in table.items()
            )
        if values["scheme"] == "sns_signature":
            values.setdefault("tolerance_seconds", SNS_TOLERANCE_SECONDS)
        scheme = AuthScheme(**values)
        _check_scheme(key, scheme)
        schemes.append(scheme)
    return tuple(schemes)


def _check_secrets(key: str, scheme: AuthScheme) -> None:
    """A secret of only whitespace is a paste or templating mistake: refuse it at start, naming its key."""
    listed = [(f"secrets[{i}]", v) for i, v in enumerate(scheme.secrets)]
    listed += [(f"tokens[{i}]", v) for i, v in enumerate(scheme.tokens)]
    listed += [(f"account_secrets.{sid}[{i}]", v) for sid, values in scheme.account_secrets
               for i, v in enumerate(values)]
    single = [("secret", scheme.secret), ("token", scheme.token), ("password", scheme.password)]
    for name, value in [*single, *listed]:
        # an empty single key is a key not set (the `needs` check below); an empty list entry is a mistake
        if not value.strip() and (value or (name, value) in listed):
            raise ConfigError(f"{key}.{name}: a secret must not be empty or only whitespace")


def _check_scheme(key: str, scheme: AuthScheme) -> None:
    """Each scheme needs its own secret material; say which key is missing."""
    _check_secrets(key, scheme)
    needs = {
        "sinch_hmac": "secret",
        "twilio_signature": "secret",
        "standard_webhooks": "secret",
        "vonage_signature": "secret",
        "sns_signature": "",  # SNS's public certificates: no secret of ours
        "telnyx_signature": "public_key",
        "plivo_signature": "secret",
        "bearer": "token",
        "url_token": "token",
        "basic": "password",
        "ip_allow_list": "allow",
    }[scheme.scheme]
    material = {"secret": scheme.signing_secrets or scheme.account_secrets, "token": scheme.accepted_tokens,
                "password": scheme.password, "allow": scheme.allow, "public_key": scheme.public_key, "": True}[needs]
    if not material:
        raise ConfigError(f"{key}.{needs}: required for scheme {scheme.scheme!r}")
    if scheme.account_secrets and scheme.scheme != "twilio_signature":
        raise ConfigError(f"{key}.account_secrets: only the twilio_signature scheme takes per-account secrets")
    if scheme.method != "md5hash" and scheme.scheme != "vonage_signature":
        raise ConfigError(f"{key}.method: only the vonage_signature scheme takes a method")
    if scheme.public_key and scheme.scheme != "telnyx_signature":
        raise ConfigError(f"{key}.public_key: only the telnyx_signature scheme takes a public key")
    if scheme.public_key and len(_base64_or_empty(scheme.public_key)) != 32:
        raise ConfigError(f"{key}.public_key: not a base64 Ed25519 public key (32 bytes), as Telnyx's portal shows it")
    if scheme.method not in VONAGE_SIGNATURE_METHODS:
        raise ConfigError(f"{key}.method: {scheme.method!r} is not one of {', '.join(VONAGE_SIGNATURE_METHODS)}")
    if scheme.scheme == "standard_webhooks":
        named = [("secret", scheme.secret)] + [(f"secrets[{i}]", v) for i, v in enumerate(scheme.secrets)]
        for name, secret in named:
            try:
                if secret:
                    standard_webhooks_key(secret)
            except ValueError:
                raise ConfigError(f"{key}.{name}: not a base64 key (`whsec_...`), as Standard Webhooks "
                                  "secrets are") from None
    if scheme.host_pattern and scheme.scheme != "sns_signature":
        raise ConfigError(f"{key}.host_pattern: only the sns_signature scheme takes a host pattern")
    if scheme.host_pattern:
        import re

        try:
            re.compile(scheme.host_pattern)
        except re.error as exc:
            raise ConfigError(f"{key}.host_pattern: not a regular expression ({exc})") from None
    if scheme.scheme == "ip_allow_list":
        import ipaddress

        for entry in scheme.allow:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(f"{key}.allow: {entry!r} is not an IP address or network") from None


def _base64_or_empty(text: str) -> bytes:
    """The bytes of a base64 text, or empty when it is not base64."""
    import base64
    import binascii

    try:
        return base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        return b""


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: base64 after an optional `whsec_`, padding optional.

    The reference library (standardwebhooks) accepts a secret written without its base64 padding, so we do too.
    """
    import base64
    import binascii

    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None
    if not key:
        raise ValueError("empty key")
    return key


def _vendor(name: str, table: Any, catalog: Mapping[str, tuple[str, ...]] | None) -> VendorSettings:
    """Parse one [vendors.<name>] table."""
    where = f"vendors.{name}"
    if catalog is not None and name not in catalog:
        raise ConfigError(f"{where}: unknown vendor (known: {', '.join(sorted(catalog))})")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    allowed = {"enabled", "auth", "account_ids", "accounts", "missing_receipt_hours", "when_kafka_is_down", "rates",
               "currency"}
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key")
    auth = _auth_list(where, table.get("auth", []), name, catalog)
    accounts = {}
    for account, account_table in (table.get("accounts") or {}).items():
        account_where = f"{where}.accounts.{account}"
        if not isinstance(account_table, dict):
            raise ConfigError(f"{account_where}: expected a table")
        unknown = set(account_table) - {"auth", "account_ids"}
        if unknown:
            raise ConfigError(f"{account_where}.{sorted(unknown)[0]}: unknown key")
        accounts[account] = AccountSettings(
            name=account,
            # an account without its own `auth` keeps its vendor's checks; it never turns authentication off
            auth=_auth_list(account_where, account_table["auth"], name, catalog) if "auth" in account_table else auth,
            account_ids=tuple(str(a) for a in account_table.get("account_ids", [])),
        )
    missing = table.get("missing_receipt_hours")
    return VendorSettings(
        name=name,
        enabled=_coerce(f"{where}.enabled", bool, table.get("enabled", True)),
        auth=auth,
        account_ids=tuple(str(a) for a in table.get("account_ids", [])),
        accounts=accounts,
        missing_receipt_hours=None if missing is None else _coerce(f"{where}.missing_receipt_hours", float, missing),
        when_kafka_is_down=_when_kafka_is_down(where, table.get("when_kafka_is_down", "spool")),
        rates=_rates(f"{where}.rates", table.get("rates") or {}),
        currency=None if table.get("currency") is None else _currency(f"{where}.currency", table["currency"]),
    )


def _when_kafka_is_down(where: str, value: Any) -> str:
    """"spool" (keep the callback durably and answer 200) or "retry" (503: the vendor sends it again)."""
    if value not in ("spool", "retry"):
        raise ConfigError(f"{where}.when_kafka_is_down: expected \"spool\" or \"retry\", got {value!r}")
    return value


def _currency(where: str, value: Any) -> str:
    """An ISO 4217 code, upper case."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value.strip()):
        raise ConfigError(f"{where}: {str(value)[:20]!r} is not a currency code like EUR")
    return value.strip().upper()


def _rates(where: str, table: Any) -> dict[str, tuple[Decimal, str]]:
    """A rate card: `{GB = "0.0400 GBP", US = "0.0079 USD"}`, the price of one part to that country."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table of country = \"<price per part> <currency>\"")
    rates = {}
    for country, value in table.items():
        price, _, currency = str(value).strip().partition(" ")
        if not re.fullmatch(r"[A-Za-z]{2}", country):
            raise ConfigError(f"{where}.{country}: not an ISO 3166-1 alpha-2 country code")
        try:
            amount = Decimal(price)
        except InvalidOperation:
            amount = Decimal(-1)
        if not amount.is_finite() or amount < 0:
            raise ConfigError(f"{where}.{country}: {str(value)[:30]!r} is not like \"0.0400 GBP\"")
        rates[country.upper()] = (amount, _currency(f"{where}.{country}", currency))
    return rates


def load_settings(environ: dict[str, str] | None = None, overrides: dict[str, Any] | None = None,
                  vendors: Mapping[str, tuple[str, ...]] | None = None) -> Settings:
    """Build Settings from the TOML file named by SMSHOOKS_CONFIG, then the environment, then overrides.

    `vendors` is the vendor catalog (each vendor we serve and the auth schemes its software can send), given by
    whoever knows the vendors (the receiver, the application): with it, an unknown vendor or a scheme its vendor
    cannot satisfy stops the service at start. Without it (the processors) vendor tables are read unchecked.
    """
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    scalar_fields = {f.name: f.type for f in dataclasses.fields(Settings) if f.name != "vendors"}
    file_vendors: dict[str, Any] = {}
    config_path = environ.get(ENV_PREFIX + "CONFIG")
    if config_path:
        try:
            document = tomllib.loads(Path(config_path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"SMSHOOKS_CONFIG: file {config_path!r} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"SMSHOOKS_CONFIG: {config_path!r} is not valid TOML: {exc}") from None
        file_vendors = document.pop("vendors", {}) or {}
        for key, value in document.items():
            if key not in scalar_fields:
                raise ConfigError(f"{key}: unknown key in {config_path}")
            values[key] = _coerce(key, scalar_fields[key], value)
    for key, kind in scalar_fields.items():
        env_key = ENV_PREFIX + key.upper()
        if env_key in environ:
            values[key] = _coerce(env_key, kind, environ[env_key])
    for key, value in (overrides or {}).items():
        if key == "vendors":
            file_vendors = value
        elif key not in scalar_fields:
            raise ConfigError(f"{key}: unknown setting")
        else:
            values[key] = _coerce(key, scalar_fields[key], value)
    vendor_tables = {name: _vendor(name, table, vendors) for name, table in file_vendors.items()}
    settings = Settings(**values, vendors=vendor_tables)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    """Cross-field and range checks that a type alone cannot express."""
    positive = [
        "topic_partitions",
        "topic_replication_factor",
        "publish_timeout_seconds",
        "max_body_bytes",
        "consumer_max_poll_interval_ms",
        "consumer_max_poll_records",
        "missing_receipt_hours",
        "unmatched_receipt_hours",
        "sweep_interval_seconds",
        "spool_after_seconds",
        "spool_max_bytes",
        "spool_max_age_seconds",
    ]
    for key in positive:
        if getattr(settings, key) <= 0:
            raise ConfigError(f"{ENV_PREFIX}{key.upper()}: must be greater than 0")
    if settings.opt_out_grace_business_days < 0:
        raise ConfigError("SMSHOOKS_OPT_OUT_GRACE_BUSINESS_DAYS: must be 0 or more")
    if settings.trusted_proxy_hops < 0:
        raise ConfigError("SMSHOOKS_TRUSTED_PROXY_HOPS: must be 0 or more")
    if settings.kafka_producer not in {"auto", "confluent", "kafka-python"}:
        raise ConfigError("SMSHOOKS_KAFKA_PRODUCER: must be auto, confluent or kafka-python")
    if settings.opt_out_scope not in OPT_OUT_SCOPES:
        raise ConfigError(f"SMSHOOKS_OPT_OUT_SCOPE: must be one of {sorted(OPT_OUT_SCOPES)}")
    if not settings.kafka_bootstrap_servers.strip():
        raise ConfigError("SMSHOOKS_KAFKA_BOOTSTRAP_SERVERS: must not be empty")
    from limits import parse_many

    for key in ("rate_limit_per_vendor", "rate_limit_per_source"):
        try:
            parse_many(getattr(settings, key))
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{key.upper()}: not a rate limit like '100/second'") from None
    if settings.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError("SMSHOOKS_LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR")


def secret_counts(settings: Settings) -> dict[str, dict[str, int]]:
    """Per vendor (and `vendor.accounts.name`), per auth scheme, how many secrets are set; never their values.

    For `smshooks config check`: a rotation in progress shows 2 for its scheme.
    """
    counts: dict[str, dict[str, int]] = {}
    for name, vendor in sorted(settings.vendors.items()):
        counts[name] = {scheme.scheme: scheme.secret_count() for scheme in vendor.auth}
        for account_name, account in sorted(vendor.accounts.items()):
            counts[f"{name}.accounts.{account_name}"] = {s.scheme: s.secret_count() for s in account.auth}
    return counts
