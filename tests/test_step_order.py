"""Each enrollment's emails go out in step order: a sequence's steps must be listed in the order they go out
(checked when campaign.toml is read)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Cli, replace_once

SECOND = '{ template = "noshow_recovery_email_2", offset = "24h", testing_offset = "2m" }'


@pytest.mark.parametrize(
    ("edited", "says"),
    [
        (
            SECOND.replace('"24h"', '"72h"'),
            "sequences.noshow: step 3 (noshow_recovery_email_3) has offset = '48h', earlier than step 2's '72h'",
        ),
        (
            SECOND.replace('"2m"', '"5m"'),
            "sequences.noshow: step 3 (noshow_recovery_email_3) has testing_offset = '3m', earlier than step 2's '5m'",
        ),
    ],
    ids=["offset", "testing_offset"],
)
def test_steps_out_of_order_are_a_config_error_naming_the_step_and_the_fix(
    xmas: Cli, project: Path, edited: str, says: str
) -> None:
    config = project / "campaign.toml"
    config.write_text(replace_once(config.read_text(), SECOND, edited))
    for command in (["status"], ["templates", "check"], ["tick", "--dry-run"]):
        stderr = xmas(*command, code=3).stderr
        assert says in stderr, stderr
        assert "list the steps in the order they go out" in stderr
