"""The vendor registry: routing by a dict of vendor name to adapter."""

from __future__ import annotations

import importlib

from receiver.vendors.base import VendorAdapter

VENDOR_MODULES = ("mobivate", "sinch", "fortytwo", "jasmin", "twilio", "vonage", "infobip", "bandwidth", "generic",
                  "aws_sms", "telnyx", "plivo")


def load_adapters() -> dict[str, VendorAdapter]:
    """Import each vendor module that exists and return {name: adapter}."""
    adapters = {}
    for name in VENDOR_MODULES:
        try:
            module = importlib.import_module(f"receiver.vendors.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"receiver.vendors.{name}":
                raise
            continue
        adapters[name] = module.ADAPTER
    return adapters
