"""The generator's shortcuts give exactly what the plain datetime code gives."""

from datetime import UTC, datetime

import pytest

from guildhub.emulator import generator as gen


@pytest.mark.parametrize(
    "ms",
    [
        0,
        999,
        86_399_999,  # the last millisecond of a day
        86_400_000,
        951_782_400_000,  # 2000-02-29, a leap day
        1_546_300_800_000,  # the first joined_at generated members can have
        1_546_300_800_000 + 219_999_999_999,  # the last
        1_704_067_199_001,
    ],
)
def test_iso_ms_is_iso_of_the_datetime(ms):
    assert gen.iso_ms(ms) == gen.iso(datetime.fromtimestamp(ms / 1000, tz=UTC))


def test_iso_ms_over_many_generated_times():
    for step in range(0, 220_000_000_000, 104_729_311):
        ms = 1_546_300_800_000 + step
        assert gen.iso_ms(ms) == gen.iso(datetime.fromtimestamp(ms / 1000, tz=UTC)), ms


def test_the_member_hot_path_hashes_what_digest_hashes():
    assert gen._digest("user|42|7") == gen.digest("user", 42, 7)
    assert gen.generated_member(7, 42, 99, [1, 2])["user"] == gen.generated_user(7, 42)
