"""Marshmallow fields for vendor payloads; format failures carry FORMAT_PREFIX so they answer
`syntax_invalid_parameter_format` rather than `syntax_constraint_violation`."""

from __future__ import annotations

import base64
import binascii
import functools
import re
from contextvars import ContextVar
from typing import Any

from marshmallow import ValidationError, fields

from receiver.errors import FORMAT_PREFIX
from receiver.smpp import DataCodingError, parse_data_coding
from receiver.times import PARSERS, TimeFormatError

MSISDN = re.compile(r"^\+?\d{3,15}$")
SHORT_TEXT = 2000
# a message's content: bounded only by the request size limit (WhatsApp through Twilio carries 4,096 characters,
# Jasmin joins the parts of a long MO), since a content we refuse is a message lost
MESSAGE_TEXT = 32_768
# the parse warnings of the callback being normalized: a list while a view collects them, else None
PARSE_WARNINGS: ContextVar[list[dict[str, str]] | None] = ContextVar("parse_warnings", default=None)


def warn(field_name: str, reason: str) -> None:
    """Note that a described field did not parse; the view puts the note on the request's events."""
    warnings = PARSE_WARNINGS.get()
    if warnings is not None:
        warnings.append({"field": field_name, "reason": reason.removeprefix(FORMAT_PREFIX)[:200]})


class Described:
    """Mixin for a field we only describe (a date, a price, a network code): a value that does not parse loads as
    None with a parse warning instead of a 400, since refusing it would lose the whole receipt."""

    def deserialize(self, value, attr=None, data=None, **kwargs):
        try:
            return super().deserialize(value, attr, data, **kwargs)
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, list) else [str(exc.messages)]
            warn(self.data_key or attr or self.name or "?", "; ".join(str(m) for m in messages))
            return None


@functools.cache
def described(field_class: type[fields.Field]) -> type[fields.Field]:
    """The tolerant twin of a field class: `described(VendorTime)("iso")` warns where VendorTime would refuse."""
    return type(f"Described{field_class.__name__}", (Described, field_class), {})


class VendorTime(fields.Field):
    """A vendor timestamp in one of the named formats, loaded as an aware UTC datetime."""

    def __init__(self, *formats: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.formats = formats or ("iso",)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationError(f"{FORMAT_PREFIX}expected a time string")
        for name in self.formats:
            try:
                return PARSERS[name](value)
            except TimeFormatError:
                continue
        raise ValidationError(f"{FORMAT_PREFIX}not a time in format {'/'.join(self.formats)}: {str(value)[:40]!r}")

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.isoformat()


class Msisdn(fields.String):
    """A phone number: optional +, 3 to 15 digits (spaces and dashes tolerated)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        compact = re.sub(r"[\s\-().]", "", text)
        if compact.startswith("00"):
            compact = "+" + compact[2:]
        if not MSISDN.match(compact):
            raise ValidationError(f"{FORMAT_PREFIX}not a phone number: {text[:40]!r}")
        return compact


class Address(fields.String):
    """A phone number or an alphanumeric sender id / short code, as vendors put in `to` and `from`; channel
    addresses (Twilio `messenger:`, `rcs:` agent ids) need a longer `max_length` than SMS's 32."""

    def __init__(self, max_length: int = 32, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_length = max_length

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text or len(text) > self.max_length:
            raise ValidationError(f"{FORMAT_PREFIX}not a phone number or sender id: {text[:40]!r}")
        return text


class Base64(fields.String):
    """Base64 text (Sinch mo_binary body)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(f"{FORMAT_PREFIX}not base64") from None
        return text


class Hex(fields.String):
    """Hexadecimal text (UDH, Jasmin `binary`)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", text):
            raise ValidationError(f"{FORMAT_PREFIX}not hexadecimal")
        return text.lower()


class Code(fields.Field):
    """A vendor status or error code, kept as text whatever its JSON type (Sinch codes are open-ended ints)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError("Not a valid code: expected an integer or a string.")
        text = str(value).strip()
        if len(text) > 64:
            raise ValidationError("Code is too long.")
        return text

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class DataCoding(fields.Field):
    """An SMPP data_coding as a raw byte, a number or a name (see receiver.smpp), loaded as its number."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ValidationError(f"{FORMAT_PREFIX}expected a data_coding")
        try:
            return parse_data_coding(str(value))
        except DataCodingError as exc:
            raise ValidationError(f"{FORMAT_PREFIX}{exc}") from None

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class StrictInteger(fields.Integer):
    """An integer that refuses floats, booleans and huge values instead of coercing them."""

    def __init__(self, **kwargs: Any):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
            value = int(value)  # form and query strings carry numbers as text
        result = super()._deserialize(value, attr, data, **kwargs)
        if abs(result) > 2**53:
            raise ValidationError("Number out of range.")
        return result
