"""Pure unit tests: id normalization as the processors use it, status order, keyword classification."""

from __future__ import annotations

import pytest

from processors.domain import statuses
from processors.domain.keywords import classify, keyword_sets, normalize_body
from receiver.vendors import canonical_message_id


@pytest.mark.parametrize(
    ("vendor", "left", "right"),
    [
        ("fortytwo", "000123", "123"),
        ("mobivate", "ABCDEF01", "abcdef01"),
        ("vonage", "0A000000FFFF", "0a000000ffff"),
        ("sinch", "01arz3ndektsv4rrffq69g5fav:+44 7700 900001", "01ARZ3NDEKTSV4RRFFQ69G5FAV:447700900001"),
        ("jasmin", " 6A2B-UUID ", "6a2b-uuid"),
    ],
)
def test_message_ids_normalize_to_one_spelling(vendor, left, right):
    assert canonical_message_id(vendor, left) == canonical_message_id(vendor, right)


def test_status_order():
    assert statuses.rank("submitted") < statuses.rank("pending") < statuses.rank("unknown")
    assert statuses.rank("unknown") < statuses.rank("delivered") == statuses.rank("failed")
    with pytest.raises(KeyError):
        statuses.rank("read")


@pytest.mark.parametrize(
    ("current", "incoming", "outcome"),
    [
        ("submitted", "pending", "applied"),
        ("submitted", "delivered", "applied"),
        ("pending", "unknown", "applied"),
        ("unknown", "expired", "applied"),
        ("pending", "pending", "duplicate"),
        ("unknown", "pending", "ignored_older"),
        ("delivered", "pending", "ignored_older"),
        ("delivered", "unknown", "ignored_older"),
        ("delivered", "delivered", "duplicate"),
        ("delivered", "failed", "conflict"),
        ("rejected", "delivered", "conflict"),
    ],
)
def test_state_machine_decisions(current, incoming, outcome):
    assert statuses.decide(current, incoming) == outcome


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("STOP", "opt_out"),
        ("  stop  ", "opt_out"),
        ("Stop.", "opt_out"),
        ("stop!!!", "opt_out"),
        ("StopAll", "opt_out"),
        ("stop all", "opt_out"),
        ("STOP   ALL", "opt_out"),
        ("Opt-Out", "opt_out"),
        ("opt out", "opt_out"),
        ("OPTOUT", "opt_out"),
        ("unsubscribe", "opt_out"),
        ("Revoke", "opt_out"),
        ("ARRÊT", "opt_out"),
        ("arret", "opt_out"),
        ("Baja", "opt_out"),
        ("STOPP", "opt_out"),
        ("start", "opt_in"),
        ("UNSTOP", "opt_in"),
        ("Yes", "opt_in"),
        ("NONARRET", "opt_in"),
        ("non-arrêt", "opt_in"),
        ("HELP", "help"),
        ("info?", "help"),
        ("Hilfe", "help"),
        ("please stop texting me", None),
        ("stopped by the shop", None),
        ("", None),
        ("!!!", None),
        ("see you at the weekend", None),
    ],
)
def test_keyword_classification_whole_body(text, action):
    found = classify(text, "en,fr,es,de")
    assert (found.action if found else None) == action


def test_in_sentence_matching_only_when_configured():
    assert classify("Please STOP sending me these", "en") is None
    found = classify("Please STOP sending me these", "en", match_in_sentence=True)
    assert found is not None and found.action == "opt_out"
    assert classify("see you at the weekend", "en", match_in_sentence=True) is None
    assert classify("I want to opt out now", "en", match_in_sentence=True).keyword == "opt out"


def test_locales_select_keyword_lists():
    assert classify("ARRET", "en") is None
    assert classify("ARRET", "fr").action == "opt_out"
    assert classify("baja", "en,fr") is None
    with pytest.raises(ValueError, match="xx"):
        keyword_sets("en,xx")


def test_normalize_body():
    assert normalize_body("  Opt-Out!! ") == "opt out"
    assert normalize_body("ARRÊT") == "arret"
