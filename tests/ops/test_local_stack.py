"""`smshooks run`'s session token and banner: what a newcomer copies from the terminal must work as printed.

No fixtures from elsewhere: the token file and the banner are ours.
"""

from __future__ import annotations

import stat

from core.settings import load_settings
from smshooks.commands.run import _banner
from smshooks.session_token import TOKEN_FILE, client_token, end_session, start_session


def test_a_session_without_a_token_gets_one_in_an_owner_only_file(tmp_path):
    token, generated = start_session(tmp_path, "")
    assert generated and len(token) >= 32
    path = tmp_path / TOKEN_FILE
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert client_token("", tmp_path) == token  # what `smshooks demo` presents
    assert client_token("configured", tmp_path) == "configured"
    end_session(tmp_path, token)
    assert not path.exists()
    assert client_token("", tmp_path) == ""


def test_a_configured_token_is_used_and_no_file_is_written(tmp_path):
    assert start_session(tmp_path, "from-the-environment") == ("from-the-environment", False)
    assert not (tmp_path / TOKEN_FILE).exists()


def test_banner_prints_the_token_a_curl_line_and_the_cli_line(tmp_path):
    settings = load_settings(environ={}, overrides={"api_token": "tok-123", "data_dir": str(tmp_path)})
    banner = _banner("http://127.0.0.1:8000", settings, tmp_path, True, token_generated=True)
    assert "API token:  tok-123" in banner
    assert "curl -H 'Authorization: Bearer tok-123' -o report.html" in banner
    assert "'http://127.0.0.1:8000/v1/reports/reconciliation?format=html'" in banner
    assert "smshooks report reconciliation --format html -o report.html" in banner
    assert "demo --url http://127.0.0.1:8000" in banner
    assert "$SMSHOOKS_API_TOKEN" not in banner  # nothing left for the reader to fill in


def test_every_document_says_the_read_api_is_off_without_a_token():
    """README, config.example.toml and the compose header agree with smshooks/api.py's answer."""
    from pathlib import Path

    from smshooks.api import ReadApiDisabled

    root = Path(__file__).resolve().parents[2]
    for name in ("README.md", "config.example.toml", "docker/compose.yaml"):
        text = (root / name).read_text()
        assert ReadApiDisabled.code in text, name
        assert "no token required" not in text, name
