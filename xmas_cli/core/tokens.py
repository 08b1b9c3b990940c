"""Signed unsubscribe tokens: the contact's address and an HMAC of it under XMAS_SECRET.

A token names exactly one contact and cannot be made without the secret, so it can be neither forged
nor reused for another contact. It needs no state, so the unsubscribe page works with no login.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import urlencode

from ..errors import ConfigError

_PURPOSE = b"xmas-unsubscribe-v1\x00"
MIN_SECRET = 16


def check_secret(secret: str | None) -> str:
    if not secret or len(secret) < MIN_SECRET:
        raise ConfigError(
            "XMAS_SECRET is not set, or shorter than 16 characters; it signs the unsubscribe links",
            "export XMAS_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))') and keep it stable",
        )
    return secret


def _mac(secret: str, email: str) -> str:
    digest = hmac.new(secret.encode(), _PURPOSE + email.lower().encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def make_token(secret: str, email: str) -> str:
    address = base64.urlsafe_b64encode(email.lower().encode()).decode().rstrip("=")
    return f"{address}.{_mac(secret, email)}"


def read_token(secret: str, token: str) -> str | None:
    """The email a token was made for, or None when it is malformed or its signature is wrong."""
    address, dot, mac = token.strip().partition(".")
    if not dot or not address or not mac or len(token) > 1000:
        return None
    try:
        email = base64.urlsafe_b64decode(address + "=" * (-len(address) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return email if hmac.compare_digest(_mac(secret, email), mac) else None


def unsubscribe_url(public_url: str, secret: str, email: str) -> str:
    return f"{public_url.rstrip('/')}/unsubscribe?{urlencode({'t': make_token(secret, email)})}"
