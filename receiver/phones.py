"""Countries of phone numbers, from libphonenumber's numbering plans (the `phonenumbers` package), for reports.

Matching stays on contract.digits_msisdn's digits-only form; this module only says where a number belongs."""

from __future__ import annotations

import phonenumbers

NON_GEOGRAPHIC = "001"  # libphonenumber's region for global services (+800, +870, +882, ...)


def country_iso2(msisdn: str | None) -> str | None:
    """ISO 3166 alpha-2 country of an international number (digits, `+` optional); None for short codes,
    alphanumeric sender ids, global services and lengths no plan allows.

    A shared calling code (+1 US/CA/..., +7 RU/KZ, +44 GB/GG/IM/JE) is resolved by the number's own plan; a number
    that no plan validates (a reserved test range such as Ofcom's 07700 900xxx) gets its code's main country."""
    if not msisdn:
        return None
    digits = msisdn[1:] if msisdn.startswith("+") else msisdn
    if not digits.isdigit() or len(digits) > 15:
        return None
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None  # a short code ("60777") parses as a calling code plus a few digits: too short for any plan
    region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
        number.country_code)
    return None if region in (None, NON_GEOGRAPHIC, phonenumbers.UNKNOWN_REGION) else region
