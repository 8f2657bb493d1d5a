"""Opt-out keyword lists per locale and the classifier of an inbound message body."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

OPT_OUT = "opt_out"
OPT_IN = "opt_in"
HELP = "help"

# Keywords are written already normalized (case-folded, accents and punctuation gone, single spaces).
# Sources: Twilio/Telnyx/Vonage defaults, AWS End User Messaging, FCC 2025 per-se words, Sinch ARRET/NONARRET.
KEYWORDS: dict[str, dict[str, frozenset[str]]] = {
    "en": {
        OPT_OUT: frozenset({
            "stop", "stopall", "stop all", "unsubscribe", "cancel", "end", "quit", "revoke", "optout",
            "opt out", "remove", "stop please", "please stop",
        }),
        OPT_IN: frozenset({"start", "unstop", "yes", "join", "subscribe", "resume"}),
        HELP: frozenset({"help", "info"}),
    },
    "fr": {
        OPT_OUT: frozenset({"arret", "arreter", "stop", "desabonner", "desinscrire", "td", "annuler", "fin"}),
        OPT_IN: frozenset({"nonarret", "non arret", "start", "abonner", "oui"}),
        HELP: frozenset({"aide", "info"}),
    },
    "es": {
        OPT_OUT: frozenset({"baja", "parar", "alto", "cancelar", "detener", "fin", "stop", "darme de baja"}),
        OPT_IN: frozenset({"alta", "start", "si", "unirse", "suscribir"}),
        HELP: frozenset({"ayuda", "info"}),
    },
    "de": {
        OPT_OUT: frozenset({"stopp", "stop", "abmelden", "austragen", "abbestellen", "kundigen", "ende"}),
        OPT_IN: frozenset({"start", "anmelden", "ja"}),
        HELP: frozenset({"hilfe", "info"}),
    },
}

# A STOP word inside a sentence only counts when opt_out_match_in_sentence is on; these longer forms
# are matched as whole words, never as substrings ("weekend" is not "end").
_PUNCTUATION = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Classification:
    """What an inbound body asks for and the keyword that said so."""

    action: str  # opt_out | opt_in | help
    keyword: str


def normalize_body(text: str) -> str:
    """Trimmed, case-folded, accent- and punctuation-free, single-spaced ("Opt-Out!" → "opt out")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    without_accents = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", without_accents)).strip()


@functools.lru_cache(maxsize=16)
def keyword_sets(locales: str) -> dict[str, frozenset[str]]:
    """The union of keyword sets of the configured locales (comma-separated, e.g. "en,fr")."""
    merged: dict[str, set[str]] = {OPT_OUT: set(), OPT_IN: set(), HELP: set()}
    for locale in (part.strip().lower() for part in locales.split(",")):
        if not locale:
            continue
        if locale not in KEYWORDS:
            known = ", ".join(sorted(KEYWORDS))
            raise ValueError(f"opt_out_locales: no keyword list for locale {locale!r} (known: {known})")
        for action, words in KEYWORDS[locale].items():
            merged[action] |= words
    return {action: frozenset(words) for action, words in merged.items()}


def classify(text: str | None, locales: str = "en", match_in_sentence: bool = False) -> Classification | None:
    """Classify a body as STOP, START or HELP by whole-body match; None for anything else."""
    if not text:
        return None
    body = normalize_body(text)
    if not body:
        return None
    sets = keyword_sets(locales)
    # Opt-out first: a body in both lists (e.g. "stop" in fr and en) must never be read as consent.
    for action in (OPT_OUT, OPT_IN, HELP):
        if body in sets[action] or body.replace(" ", "") in sets[action]:
            return Classification(action, body)
    if match_in_sentence:
        words = body.split(" ")
        phrases = set(words) | {" ".join(pair) for pair in zip(words, words[1:], strict=False)}
        found = sorted(phrases & sets[OPT_OUT], key=lambda word: (-len(word), word))
        if found:
            return Classification(OPT_OUT, found[0])
    return None
