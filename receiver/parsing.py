"""Turn a raw request body into a payload: JSON, form or query string, strictly."""

from __future__ import annotations

import codecs
import json
import math
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from receiver.errors import ConstraintViolation, InvalidJson, InvalidParameterFormat, UnsupportedMediaType

JSON_TYPES = {"application/json"}
FORM_TYPES = {"application/x-www-form-urlencoded"}
MAX_JSON_DEPTH = 32
# a \uD800-\uDFFF escape: json.loads keeps a lone one as a surrogate no encoder (event id, Kafka) accepts
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def media_type(content_type: str | None) -> tuple[str, str]:
    """(media type, charset) of a Content-Type header."""
    if not content_type:
        return "", "utf-8"
    parts = [p.strip() for p in content_type.split(";")]
    charset = "utf-8"
    for parameter in parts[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value:
            charset = value.strip().strip('"').lower()
    return parts[0].lower(), charset


def payload_format(method: str, content_type: str | None, accepted: tuple[str, ...]) -> str:
    """Which parser applies: GET reads the query string; POST needs a content type the adapter takes."""
    if method == "GET":
        return "query"
    kind, _ = media_type(content_type)
    if kind in JSON_TYPES and "json" in accepted:
        return "json"
    if kind in FORM_TYPES and "form" in accepted:
        return "form"
    if kind == "text/plain" and "text-json" in accepted:
        return "json"  # JSON sent as text/plain (Amazon SNS's HTTP/S deliveries)
    names = {"json": "application/json", "form": "application/x-www-form-urlencoded", "text-json": "text/plain"}
    wanted = " or ".join(names[f] for f in accepted if f != "query")
    raise UnsupportedMediaType(f"Content type {kind or '(none)'!r} is not accepted here; send {wanted}.")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects with a repeated key are ambiguous: refuse them rather than pick one."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidJson(f"The JSON object repeats the key {key[:64]!r}.")
        result[key] = value
    return result


def _depth(value: Any, limit: int) -> None:
    """Refuse absurdly nested JSON before it reaches a schema."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise ConstraintViolation(f"The JSON is nested deeper than {limit} levels.")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _decode(body: bytes, charset: str) -> str:
    """The body as text in its declared charset."""
    try:
        codecs.lookup(charset)
    except LookupError:
        raise UnsupportedMediaType(f"Unknown charset {charset[:32]!r}.") from None
    try:
        return body.decode(charset)
    except UnicodeDecodeError:
        raise InvalidParameterFormat(f"The body is not valid {charset}.") from None


def parse_json(body: bytes, content_type: str | None) -> Any:
    """Strict JSON: valid text in its charset, no duplicate keys, no NaN, bounded depth."""
    _, charset = media_type(content_type)
    text = _decode(body, charset)
    if not text.strip():
        raise InvalidJson("The body is empty.")
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant,
                              parse_float=_finite_float)
    except InvalidJson:
        raise
    except RecursionError:
        raise ConstraintViolation("The JSON is nested too deeply.") from None
    except ValueError as exc:
        raise InvalidJson(f"The body is not valid JSON: {str(exc)[:120]}") from None
    if text.count("{") + text.count("[") >= MAX_JSON_DEPTH:  # fewer brackets cannot nest deeper: no walk needed
        _depth(document, MAX_JSON_DEPTH)
    if SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidJson("The JSON contains an unpaired UTF-16 surrogate escape.") from None
    if "\\u0000" in text or "\x00" in text:
        # PostgreSQL stores no NUL in text or JSONB: the processors would dead-letter an event we answered 200
        # for, so a NUL becomes U+FFFD here, as parse_pairs drops them from form values
        document = _without_nul(document)
    return document


def _without_nul(value: Any) -> Any:
    """The document with every NUL in its keys and strings replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _refuse_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not valid JSON.")


def _finite_float(literal: str) -> float:
    """A JSON number as a float; one too large for a double (`1e999`) would become Infinity, which no JSON
    encoder writes back, so it can never be published: refuse it."""
    number = float(literal)
    if math.isinf(number):
        raise InvalidJson(f"The number {literal[:32]} is out of range.")
    return number


def parse_pairs(text: str) -> dict[str, str]:
    """Form or query pairs as a dict; a repeated name is refused as ambiguous."""
    result: dict[str, str] = {}
    for key, value in _pairs(text):
        if key in result:
            raise ConstraintViolation(f"The parameter {key[:64]!r} is repeated.")
        if "\x00" in key:
            raise InvalidParameterFormat(f"The parameter name {key[:64]!r} contains a NUL character.")
        # Jasmin sends raw SMS bytes (UCS2 has NULs): keep the value, minus the NULs no database stores;
        # Jasmin's `binary` parameter carries the exact bytes.
        result[key] = value.replace("\x00", "")
    return result


def _pairs(text: str) -> list[tuple[str, str]]:
    """Percent-decoded pairs: UTF-8 where valid, else Latin-1 (byte for byte), as gateways send raw SMS bytes."""
    pairs = []
    for field in text.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        # unquote_to_bytes keeps %XX as raw bytes and any already-decoded character (from the body's own charset,
        # e.g. shift_jis) as its UTF-8 bytes, so nothing is lost before we choose how to read the bytes
        pairs.append((_text(unquote_to_bytes(name.replace("+", " "))),
                      _text(unquote_to_bytes(value.replace("+", " ")))))
    return pairs


def _text(raw: bytes) -> str:
    """UTF-8 text, or the bytes as Latin-1 when they are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_body(fmt: str, body: bytes, content_type: str | None, query_string: bytes) -> Any:
    """Dispatch to the parser for the payload format."""
    if fmt == "json":
        return parse_json(body, content_type)
    if fmt == "form":
        _, charset = media_type(content_type)
        return parse_pairs(_decode(body, charset))
    try:
        return parse_pairs(query_string.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidParameterFormat("The query string is not valid UTF-8.") from None
