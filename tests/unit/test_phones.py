"""receiver.phones.country_iso2 against libphonenumber's plans: shared calling codes, short codes, sender ids.

Numbers: libphonenumber's own example numbers and Ofcom's drama range (+44 7700 900xxx, valid in no plan)."""

from __future__ import annotations

import pytest

from core.events import digits_msisdn
from receiver.phones import country_iso2


@pytest.mark.parametrize(
    ("number", "country"),
    [
        ("12015550123", "US"), ("+12125550100", "US"), ("14165550123", "CA"), ("16045550123", "CA"),
        ("79161234567", "RU"), ("+77012345678", "KZ"),
        ("447700900123", "GB"),  # no plan validates the drama range: +44's main country
        ("447797712345", "JE"), ("447781123456", "GG"),  # Jersey and Guernsey share +44 with their own ranges
        ("61491570156", "AU"), ("4915112345678", "DE"), ("35699123456", "MT"),
    ],
)
def test_international_numbers_get_their_country(number, country):
    assert country_iso2(number) == country


@pytest.mark.parametrize("value", [None, "", "60777", "88888", "ACME", "Info SMS", "+", "870773111632",
                                   "1" * 16, "+44 7700"])
def test_short_codes_sender_ids_and_global_services_have_none(value):
    assert country_iso2(value) is None


def test_matching_stays_on_digits_only():
    assert digits_msisdn("+1 (212) 555-0100") == "12125550100" and digits_msisdn("ACME") == "ACME"
    assert country_iso2(digits_msisdn("+1 (212) 555-0100")) == "US"
