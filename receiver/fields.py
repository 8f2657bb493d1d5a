"""Marshmallow fields for vendor payloads; format failures carry FORMAT_PREFIX so they answer
`syntax_invalid_parameter_format` rather than `syntax_constraint_violation`."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from marshmallow import ValidationError, fields

from receiver.errors import FORMAT_PREFIX
from receiver.times import PARSERS, TimeFormatError

MSISDN = re.compile(r"^\+?\d{3,15}$")
SHORT_TEXT = 2000


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
    """A phone number or an alphanumeric sender id / short code, as vendors put in `to` and `from`."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text or len(text) > 32:
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
