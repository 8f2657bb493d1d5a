"""The local stack's API token: `smshooks run` makes one per session so the read API works as printed.

Production never goes through here: without SMSHOOKS_API_TOKEN the read API answers 503 `read_api_disabled`.
The session token is written to `<data_dir>/api-token` (owner-only) so `smshooks demo` in another terminal
finds it, and removed when the session ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

TOKEN_FILE = "api-token"


def start_session(data_dir: Path, configured: str) -> tuple[str, bool]:
    """(token, generated): the configured api_token when set, else a fresh token written to data_dir/api-token."""
    if configured:
        return configured, False
    token = secrets.token_urlsafe(24)
    path = data_dir / TOKEN_FILE
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token, True


def end_session(data_dir: Path, token: str) -> None:
    """Remove the session's token file if it is still ours."""
    path = data_dir / TOKEN_FILE
    with contextlib.suppress(OSError):
        if path.read_text().strip() == token:
            path.unlink()


def client_token(configured: str, data_dir: Path) -> str:
    """The token a local client should present: the configured one, else the running session's, else ''."""
    if configured:
        return configured
    try:
        return (data_dir / TOKEN_FILE).read_text().strip()
    except OSError:
        return ""


def banner_lines(base: str, token: str, generated: bool, smshooks: str) -> list[str]:
    """What `smshooks run` prints about the token: where it comes from, a curl line and the CLI twin."""
    origin = "generated for this session, in data dir/api-token" if generated else "from SMSHOOKS_API_TOKEN / api_token"
    return [
        f"API token:  {token}  ({origin})",
        f"Report:     curl -H 'Authorization: Bearer {token}' -o report.html \\",
        f"              '{base}/v1/reports/reconciliation?format=html'",
        f"            {smshooks} report reconciliation --format html -o report.html",
    ]
