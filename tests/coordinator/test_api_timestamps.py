"""A client's timestamp that protobuf cannot represent is refused on the way in (the fuzz test
found one stored through SubmitChanges that ListChanges could then never answer)."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from coordinator.api.convert import from_ts
from coordinator.domain.errors import InvalidArgument


def test_a_representable_timestamp_is_read() -> None:
    assert from_ts(Timestamp(seconds=1_700_000_000, nanos=500_000_000)) == 1_700_000_000.5


@pytest.mark.parametrize("seconds", [-549755813888, 253402300800])
def test_a_timestamp_outside_years_1_to_9999_is_refused(seconds: int) -> None:
    with pytest.raises(InvalidArgument, match="is not a valid time"):
        from_ts(Timestamp(seconds=seconds))
