"""Reading a received email back from Resend (`GET /emails/receiving/{id}` through the SDK): the `email.received`
webhook carries metadata only, so its headers (Auto-Submitted and the like) must be fetched."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import resend
from resend.exceptions import ResendError

from ..errors import ConfigError, MailerUnavailable, NotFound

KEY_FIX = "set RESEND_API_KEY to a key that may read received emails (Resend → API Keys)"
ReadReceived = Callable[[str], Mapping[str, Any]]


def received_reader(env: Mapping[str, str]) -> ReadReceived:
    """A function that retrieves one received email by id; the key (RESEND_API_KEY) and the URL (RESEND_API_URL)
    are read from `env` when it is first called, so a webhook that needs no reading needs no key."""

    def read(email_id: str) -> Mapping[str, Any]:
        api_key = (env.get("RESEND_API_KEY") or "").strip()
        if not api_key:
            raise ConfigError("RESEND_API_KEY is not set: a reply's headers cannot be read", KEY_FIX)
        api_url = (env.get("RESEND_API_URL") or "").strip().rstrip("/") or None
        old_key, old_url = resend.api_key, resend.api_url
        resend.api_key = api_key
        if api_url is not None:
            resend.api_url = api_url
        try:
            email = resend.Emails.Receiving.get(email_id)
        except ResendError as exc:
            what = f"reading received email {email_id} from Resend failed: {exc.code} {exc.error_type}"
            if exc.code == 404:
                raise NotFound(
                    what, "nothing was changed; check that the webhook and the key are the same team's"
                ) from None
            if exc.code in (401, 403):
                raise ConfigError(what, KEY_FIX) from None
            raise MailerUnavailable(what, "Resend redelivers the webhook later; nothing was changed") from None
        finally:
            resend.api_key, resend.api_url = old_key, old_url
        return dict(email)

    return read
