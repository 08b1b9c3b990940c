"""campaign.toml's [pause] and [actions]: what a pause of the whole campaign spares, and what the actions on one
contact (`xmas contact maybe|booked`, Notion's Action column) enroll or record."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PauseConfig(_Strict):
    # Under a pause of the whole campaign (`xmas pause`), transactional sequences (onboarding) still go out
    exempt_transactional: bool = False


class ActionsConfig(_Strict):
    maybe: str = "postcall"  # the post-call "maybe" follow-up a contact is enrolled in
    booked: str = "booked"  # the event a booking records
