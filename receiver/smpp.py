"""SMPP data_coding: read the value in the forms gateways write it, and decode a short message's bytes with it."""

from __future__ import annotations

import gsm0338  # noqa: F401  registers the "gsm03.38" codec (3GPP TS 23.038 default alphabet, unpacked septets)

GSM_DEFAULT = 0
UCS2 = 8
# SMPP 3.4 section 5.2.19 names, as older Jasmin releases (before 2017) wrote `coding`
CODING_NAMES = {
    "SMSC_DEFAULT_ALPHABET": 0,
    "IA5_ASCII": 1,
    "OCTET_UNSPECIFIED": 2,
    "LATIN_1": 3,
    "OCTET_UNSPECIFIED_COMMON": 4,
    "JIS": 5,
    "CYRILLIC": 6,
    "ISO_8859_8": 7,
    "UCS2": 8,
    "PICTOGRAM": 9,
    "ISO_2022_JP": 10,
    "EXTENDED_KANJI_JIS": 13,
    "KS_C_5601": 14,
}
# Python codecs for the SMPP 3.4 character sets (2 and 4 are binary, 9 has no standard codec)
CODECS = {
    0: "gsm03.38",
    1: "ascii",
    3: "latin-1",
    5: "iso2022_jp",  # JIS (X 0208-1990)
    6: "iso8859_5",
    7: "iso8859_8",
    8: "utf-16-be",  # UCS2; UTF-16 also reads the surrogate pairs handsets send for emoji
    10: "iso2022_jp",
    13: "euc_jis_2004",  # extended kanji JIS (X 0212-1990)
    14: "euc_kr",  # KS C 5601
}
BINARY = "binary"


class DataCodingError(ValueError):
    """A data_coding value in none of the forms gateways use."""


def parse_data_coding(value: str) -> int:
    """The data_coding byte from its raw form (Jasmin since 2020 sends the byte itself, e.g. `%08`), its number
    (Jasmin 2017-2020, `8`) or its SMPP name (Jasmin before 2017, `UCS2`)."""
    text = value.strip()
    if text.isdigit():
        number = int(text)
    elif len(value) == 1:
        number = ord(value)  # the raw byte, percent-decoded to one character
    elif text.upper() in CODING_NAMES:
        return CODING_NAMES[text.upper()]
    else:
        raise DataCodingError(f"not an SMPP data_coding: {value[:20]!r}")
    if not 0 <= number <= 0xFF:
        raise DataCodingError(f"data_coding out of range: {number}")
    return number


def alphabet(coding: int) -> str:
    """The codec a data_coding names (or BINARY), per SMPP 3.4 for 0x00-0x0F and GSM 03.38 for the groups above."""
    if coding <= 0x0F:
        return CODECS.get(coding, BINARY)
    group = coding >> 4
    if group <= 0x3:  # general data coding: bit 5 set means compressed, bits 3-2 the alphabet
        if coding & 0x20:
            return BINARY
        return {0: "gsm03.38", 1: BINARY, 2: "utf-16-be"}.get((coding >> 2) & 0x3, BINARY)
    if group in (0xC, 0xD):  # message waiting indication, default alphabet
        return "gsm03.38"
    if group == 0xE:  # message waiting indication, UCS2
        return "utf-16-be"
    if group == 0xF:  # data coding / message class: bit 2 set means 8-bit data
        return BINARY if coding & 0x04 else "gsm03.38"
    return BINARY  # reserved groups


def decode(message: bytes, coding: int) -> str | None:
    """The text of a short message's bytes, or None for binary data; bytes that do not fit the declared alphabet
    are read as UTF-8, then Latin-1 (SMSCs that declare the default alphabet often send one of those)."""
    codec = alphabet(coding)
    if codec == BINARY:
        return None
    try:
        return message.decode(codec)
    except (UnicodeDecodeError, LookupError):
        pass
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        return message.decode("latin-1")


# submit_sm_resp command_status names and their meaning, from the SMPP 3.4 specification (section 5.1.3, table
# 5-2), as Jasmin passes a refused submit in a level-1 receipt's message_status. The DLR `err:` field is not here:
# SMPP 3.4 appendix B calls it network- or SMSC-specific, so its meaning is the SMSC's and stays unknown.
COMMAND_STATUS_DESCRIPTIONS = {
    "ESME_RINVMSGLEN": "message length is invalid",
    "ESME_RSYSERR": "system error",
    "ESME_RINVSRCADR": "invalid source address",
    "ESME_RINVDSTADR": "invalid destination address",
    "ESME_RMSGQFUL": "message queue full",
    "ESME_RINVSERTYP": "invalid service type",
    "ESME_RINVESMCLASS": "invalid esm_class field data",
    "ESME_RSUBMITFAIL": "submit_sm failed",
    "ESME_RINVSRCTON": "invalid source address TON",
    "ESME_RINVSRCNPI": "invalid source address NPI",
    "ESME_RINVDSTTON": "invalid destination address TON",
    "ESME_RINVDSTNPI": "invalid destination address NPI",
    "ESME_RTHROTTLED": "throttling error: the ESME exceeded its message limits",
    "ESME_RINVSCHED": "invalid scheduled delivery time",
    "ESME_RINVEXPIRY": "invalid validity period (expiry time)",
    "ESME_RX_T_APPN": "ESME receiver temporary application error",
    "ESME_RX_P_APPN": "ESME receiver permanent application error",
    "ESME_RX_R_APPN": "ESME receiver reject message error",
    "ESME_RDELIVERYFAILURE": "delivery failure",
    "ESME_RUNKNOWNERR": "unknown error",
}


def command_status_description(name: str | None) -> str | None:
    """The SMPP 3.4 meaning of a command_status name (ESME_R...); None for names the specification does not list."""
    return COMMAND_STATUS_DESCRIPTIONS.get((name or "").strip().upper())
