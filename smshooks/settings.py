"""Configuration from SMSHOOKS_* environment variables and an optional TOML file, validated at start."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "SMSHOOKS_"
AUTH_SCHEMES = {
    "sinch_hmac",
    "twilio_signature",
    "standard_webhooks",
    "vonage_signature",
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
    username: str = ""
    password: str = ""
    token: str = ""
    allow: tuple[str, ...] = ()
    tolerance_seconds: int = 300
    # vonage_signature only: the "signature method" chosen in the Vonage dashboard
    method: str = "md5hash"


# Vonage's signature methods: md5 of the signed string plus the secret, or an HMAC of it keyed by the secret
VONAGE_SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")


@dataclass(frozen=True)
class AccountSettings:
    """A vendor account with its own credentials, chosen by `?account=<name>`."""

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


@dataclass(frozen=True)
class Settings:
    """Every setting of smshooks; names map to SMSHOOKS_<NAME> environment variables."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    topic_partitions: int = 6
    topic_replication_factor: int = 1
    publish_timeout_seconds: float = 5.0
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
    log_level: str = "INFO"
    metrics_port: int = 9102
    vendors: dict[str, VendorSettings] = field(default_factory=dict)

    @property
    def effective_database_url(self) -> str:
        """SQLite under the data directory unless a URL is configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'smshooks.db'}"

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


def _auth_list(where: str, items: Any) -> tuple[AuthScheme, ...]:
    """Parse a list of auth tables."""
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
        values = dict(item)
        if "allow" in values:
            values["allow"] = tuple(str(a) for a in values["allow"])
        scheme = AuthScheme(**values)
        _check_scheme(key, scheme)
        schemes.append(scheme)
    return tuple(schemes)


def _check_scheme(key: str, scheme: AuthScheme) -> None:
    """Each scheme needs its own secret material; say which key is missing."""
    needs = {
        "sinch_hmac": "secret",
        "twilio_signature": "secret",
        "standard_webhooks": "secret",
        "vonage_signature": "secret",
        "bearer": "token",
        "url_token": "token",
        "basic": "password",
        "ip_allow_list": "allow",
    }[scheme.scheme]
    if not getattr(scheme, needs):
        raise ConfigError(f"{key}.{needs}: required for scheme {scheme.scheme!r}")
    if scheme.method != "md5hash" and scheme.scheme != "vonage_signature":
        raise ConfigError(f"{key}.method: only the vonage_signature scheme takes a method")
    if scheme.method not in VONAGE_SIGNATURE_METHODS:
        raise ConfigError(f"{key}.method: {scheme.method!r} is not one of {', '.join(VONAGE_SIGNATURE_METHODS)}")
    if scheme.scheme == "ip_allow_list":
        import ipaddress

        for entry in scheme.allow:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(f"{key}.allow: {entry!r} is not an IP address or network") from None


def _vendor(name: str, table: Any, known_vendors: set[str]) -> VendorSettings:
    """Parse one [vendors.<name>] table."""
    where = f"vendors.{name}"
    if name not in known_vendors:
        raise ConfigError(f"{where}: unknown vendor (known: {', '.join(sorted(known_vendors))})")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    allowed = {"enabled", "auth", "account_ids", "accounts", "missing_receipt_hours"}
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key")
    accounts = {}
    for account, account_table in (table.get("accounts") or {}).items():
        account_where = f"{where}.accounts.{account}"
        if not isinstance(account_table, dict):
            raise ConfigError(f"{account_where}: expected a table")
        accounts[account] = AccountSettings(
            name=account,
            auth=_auth_list(account_where, account_table.get("auth", [])),
            account_ids=tuple(str(a) for a in account_table.get("account_ids", [])),
        )
    missing = table.get("missing_receipt_hours")
    return VendorSettings(
        name=name,
        enabled=_coerce(f"{where}.enabled", bool, table.get("enabled", True)),
        auth=_auth_list(where, table.get("auth", [])),
        account_ids=tuple(str(a) for a in table.get("account_ids", [])),
        accounts=accounts,
        missing_receipt_hours=None if missing is None else _coerce(f"{where}.missing_receipt_hours", float, missing),
    )


KNOWN_VENDORS = {"mobivate", "sinch", "fortytwo", "jasmin", "twilio", "vonage", "generic"}


def load_settings(environ: dict[str, str] | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build Settings from the TOML file named by SMSHOOKS_CONFIG, then the environment, then overrides."""
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
    vendors = {name: _vendor(name, table, KNOWN_VENDORS) for name, table in file_vendors.items()}
    settings = Settings(**values, vendors=vendors)
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
    ]
    for key in positive:
        if getattr(settings, key) <= 0:
            raise ConfigError(f"{ENV_PREFIX}{key.upper()}: must be greater than 0")
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
