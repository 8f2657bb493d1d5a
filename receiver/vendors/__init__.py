"""The vendor registry, derived from this package: every module that defines `ADAPTER` is a vendor we serve.

Adding a vendor is adding its module here (with its tests and its README row); every list of vendors, their auth
schemes, message-id rules and send-response readers is read from the adapters, never written twice.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from receiver.vendors.base import VendorAdapter, as_given


@functools.cache
def _adapters() -> tuple[VendorAdapter, ...]:
    """Import every module of the package once and keep the adapters they define, in name order."""
    found = []
    for module in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        adapter = getattr(importlib.import_module(f"{__name__}.{module}"), "ADAPTER", None)
        if isinstance(adapter, VendorAdapter):
            found.append(adapter)
    return tuple(sorted(found, key=lambda a: a.name))


def load_adapters() -> dict[str, VendorAdapter]:
    """{name: adapter} for every vendor, routing by a dict."""
    return {adapter.name: adapter for adapter in _adapters()}


def callback_vendors() -> set[str]:
    """The vendors that call us back (a send-only vendor such as FullSMS has no callback routes)."""
    return {adapter.name for adapter in _adapters() if adapter.kinds}


def auth_catalog() -> dict[str, tuple[str, ...]]:
    """For settings: each vendor that calls back, with the auth schemes its software can really send."""
    return {adapter.name: adapter.auth_schemes for adapter in _adapters() if adapter.kinds}


def canonical_message_id(vendor: str, message_id: str) -> str:
    """The vendor's own spelling rule for its message ids (an unknown vendor's id as given)."""
    adapter = load_adapters().get(vendor)
    return (adapter.canonical_id if adapter else as_given)(message_id)
