"""Form and query parsing keeps every byte, whatever charset the body declares (found by the hostile-input run)."""

from __future__ import annotations

from receiver.parsing import parse_body

FORM = "application/x-www-form-urlencoded"


def test_non_latin_charset_form_is_decoded_not_crashed():
    assert parse_body("form", "text=日本".encode("shift_jis"), f"{FORM}; charset=shift_jis", b"") == {"text": "日本"}


def test_hypothesis_found_shift_jis_body_parses():
    body = b"-\x8eW\x7f\x1fM\x16_\xbc`<\xd9e"
    assert list(parse_body("form", body, f"{FORM}; charset=shift_jis", b"").values()) == [""]


def test_percent_escapes_utf8_latin1_fallback_and_nul():
    parsed = parse_body("form", b"text=caf%C3%A9&raw=%E9+z&nul=%00%41&blank", FORM, b"")
    assert parsed == {"text": "café", "raw": "é z", "nul": "A", "blank": ""}


def test_shift_jis_form_through_the_app_is_a_documented_answer():
    from receiver import create_app

    app = create_app({"kafka_bootstrap_servers": "127.0.0.1:9", "publish_timeout_seconds": 0.2})
    response = app.test_client().post("/v1/callbacks/vonage/inbound-messages", data=b"-\x8eW\x7f\x1fM\x16_\xbc`<\xd9e",
                                      content_type=f"{FORM}; charset=shift_jis")
    # the rejected callback cannot be recorded without Kafka, so 503 stands in for the 400: never a 500
    assert response.status_code in {400, 503} and response.get_json()["code"] != "internal_error"
    app.extensions["smshooks.publisher"].close()


def test_a_nul_in_json_text_becomes_a_replacement_character():
    """PostgreSQL refuses NUL in text and JSONB: a "STOP\\u0000" published as is was answered 200, then
    dead-lettered by the processors (lost). It is kept as U+FFFD instead."""
    from receiver.parsing import parse_json

    document = parse_json(b'{"text": "STOP\\u0000", "k\\u0000": ["a\\u0000b", 1]}', "application/json")
    assert document == {"text": "STOP\ufffd", "k\ufffd": ["a\ufffdb", 1]}
    assert parse_json(b'{"text": "STOP"}', "application/json") == {"text": "STOP"}
