"""Trusted proxies: X-Forwarded-For speaks for the client only through the configured hops, and is doubted aloud."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

log = logging.getLogger(__name__)


def is_public(address: str) -> bool:
    """Whether an address is on the internet (not loopback, private, link-local or reserved)."""
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


class TrustedProxies(ProxyFix):
    """ProxyFix for `hops` proxies that warns (once per process) when a forwarded request comes straight from a
    public address: the proxies a deployment puts in front connect from its own network, so then no proxy is
    there and the client wrote the X-Forwarded-For that chose its address (allow-lists and rate limits)."""

    def __init__(self, app: Any, hops: int):
        super().__init__(app, x_for=hops, x_proto=hops, x_host=hops)
        self.hops, self.warned = hops, False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not self.warned and "HTTP_X_FORWARDED_FOR" in environ and is_public(environ.get("REMOTE_ADDR", "")):
            self.warned = True
            log.warning(
                "SMSHOOKS_TRUSTED_PROXY_HOPS=%d but a request with X-Forwarded-For came straight from a public "
                "address: if no proxy of yours is in front, clients choose their own address; set the hops to the "
                "number of proxies in front (0 if none). A proxy on a public address (a CDN) may ignore this.",
                self.hops,
            )
        return super().__call__(environ, start_response)
