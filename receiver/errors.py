"""The error contract: one exception type per documented answer, rendered as the documented body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An answer other than 200, with its machine code and human text."""

    status = 500
    code = "internal_error"
    text = "An unexpected internal error occurred and the request was not processed."
    # 400/403/413/415 are final for the vendor, so the raw callback is kept on the rejected topic.
    recorded = False

    def __init__(self, text: str | None = None, *, code: str | None = None,
                 errors: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(text or self.text)
        self.text = text or self.text
        self.code = code or self.code
        self.errors = errors
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """`{"code", "text", "errors"?, "request_id"}`."""
        body: dict[str, Any] = {"code": self.code, "text": self.text}
        if self.errors:
            body["errors"] = self.errors
        body["request_id"] = request_id
        return body


class InvalidJson(ApiError):
    status, code, recorded = 400, "syntax_invalid_json", True
    text = "The body is not valid JSON."


class MalformedBody(ApiError):
    status, code, recorded = 400, "syntax_malformed_body", True
    text = "The body's HTTP framing is broken (chunk size, chunk terminator or extension, or a truncated chunk)."


class RequestTimeout(ApiError):
    status, code = 408, "request_timeout"
    text = "The request was not received in time; send it again."


class InvalidParameterFormat(ApiError):
    status, code, recorded = 400, "syntax_invalid_parameter_format", True
    text = "The format of a field value is invalid."


class ConstraintViolation(ApiError):
    status, code, recorded = 400, "syntax_constraint_violation", True
    text = "The request does not fulfil the constraints of the API."


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"
    text = "Credentials are missing or wrong."


class Forbidden(ApiError):
    status, code, recorded = 403, "forbidden", True
    text = "The request is well-formed but cannot be accepted."


class UnknownCallbackType(Forbidden):
    code = "unknown_callback_type"
    text = "This endpoint does not take callbacks of this type."


class UnknownAccount(Forbidden):
    code = "unknown_account"
    text = "The account or service id is not configured here."


class NotFound(ApiError):
    status, code = 404, "not_found"
    text = "No such vendor, kind or path."


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"
    text = "The path is valid but not for this method."


class PayloadTooLarge(ApiError):
    status, code, recorded = 413, "payload_too_large", True
    text = "The body is larger than allowed."


class UnsupportedMediaType(ApiError):
    status, code, recorded = 415, "unsupported_media_type", True
    text = "This endpoint does not take this content type."


class RateLimited(ApiError):
    status, code = 429, "rate_limited"
    text = "Too many requests; retry after the delay in Retry-After."


class ServiceUnavailable(ApiError):
    status, code = 503, "service_unavailable"
    text = "A required subsystem is unavailable; retry after the delay in Retry-After."


FORMAT_PREFIX = "Invalid format: "


def validation_error(messages: Any) -> ApiError:
    """400 from marshmallow messages: format errors when every message is one, else a constraint error."""
    flat = list(_flatten(messages))
    errors = messages if isinstance(messages, dict) else {"_schema": flat}
    if flat and all(m.startswith(FORMAT_PREFIX) for m in flat):
        return InvalidParameterFormat(errors=errors)
    return ConstraintViolation(errors=errors)


def _flatten(messages: Any):
    """All message strings of a nested marshmallow error structure."""
    if isinstance(messages, str):
        yield messages
    elif isinstance(messages, dict):
        for value in messages.values():
            yield from _flatten(value)
    elif isinstance(messages, list | tuple):
        for value in messages:
            yield from _flatten(value)
