"""The on-disk spool and the delivery that sends from it across reconnects (no grpc)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from protos.gantry.v1 import worker_pb2
from tests.worker_agent.fakes import RecordingSink
from worker_agent.delivery import Delivery
from worker_agent.runner import split_marks
from worker_agent.spool import Spool


def segments(spool_dir: Path) -> list[str]:
    return sorted(p.name for p in spool_dir.glob("*.spool")) if spool_dir.exists() else []


async def test_records_are_numbered_byte_exact_and_trimmed_by_acks(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", limit=1 << 20, segment_size=8)
    payloads = [bytes([i]) * (i + 8) for i in range(10)]
    for i, data in enumerate(payloads):
        assert await spool.append(1 + i % 3, data) == i + 1
    assert [spool.read(i + 1) for i in range(10)] == [(1 + i % 3, d) for i, d in enumerate(payloads)]
    assert len(segments(tmp_path / "s")) == 10  # each record overflowed the 8-byte segment
    spool.ack(6)
    assert spool.read(6) is None and spool.read(7) == (1, payloads[6])
    assert segments(tmp_path / "s") == [f"{n:08d}.spool" for n in range(6, 10)]
    assert spool.pending_bytes == sum(len(d) for d in payloads[6:])
    spool.ack(10)
    assert segments(tmp_path / "s") == ["00000009.spool"] and (tmp_path / "s" / "00000009.spool").stat().st_size == 0
    assert await spool.append(2, b"after") == 11 and spool.read(11) == (2, b"after")
    spool.close()
    assert not (tmp_path / "s").exists()


async def test_a_full_spool_makes_append_wait_until_an_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", limit=10)
    await spool.append(1, b"0123456789")
    blocked = asyncio.ensure_future(spool.append(1, b"x"))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(blocked), 0.1)
    spool.ack(1)
    assert await asyncio.wait_for(blocked, 5) == 2


async def test_delivery_resends_exactly_what_was_not_stored_after_a_reattach(tmp_path: Path) -> None:
    delivery = Delivery("c", Spool(tmp_path / "s"), window=2)
    first = RecordingSink(auto_ack=False)
    delivery.attach(first)
    for i in range(1, 6):
        await delivery.append(1, b"%d" % i)
    await first.wait_for(lambda: len(first.chunks) == 2)  # the window: 2 unacknowledged
    delivery.ack(1)
    await first.wait_for(lambda: len(first.chunks) == 3)
    delivery.detach()  # the connection is lost; the command keeps going
    await delivery.append(2, b"6")
    ended = asyncio.ensure_future(delivery.finish(worker_pb2.CommandFinished(command_id="c", rc=0, last_seq=6)))

    second = RecordingSink(auto_ack=False)
    # The coordinator stored 1 and 2, not 3: only chunk 3 (1 byte) is sent a second time.
    assert delivery.attach(second, stored_seq=2) == 1
    await second.wait_for(lambda: len(second.chunks) == 2)
    delivery.ack(4)
    await second.wait_for(lambda: second.chunks[-1].seq == 6)
    delivery.ack(6)
    await asyncio.wait_for(ended, 5)
    assert [(c.seq, c.data) for c in second.chunks] == [(3, b"3"), (4, b"4"), (5, b"5"), (6, b"6")]
    assert second.messages[-1].finished.last_seq == 6
    forgotten = asyncio.ensure_future(delivery.finish_acknowledged())
    await asyncio.sleep(0)
    assert not forgotten.done()  # acks of output do not end it
    delivery.ack(6, finished=True)
    await asyncio.wait_for(forgotten, 5)
    delivery.close()


async def test_time_marks_are_kept_with_their_record_and_resent_unchanged(tmp_path: Path) -> None:
    delivery = Delivery("c", Spool(tmp_path / "s"), window=4)
    first = RecordingSink(auto_ack=False)
    delivery.attach(first)
    await delivery.append(1, b"one\n", (0, 1_000))
    await delivery.append(1, b"two\nthree\n", (0, 2_000, 4, 2_500))
    await first.wait_for(lambda: len(first.chunks) == 2)
    delivery.detach()
    second = RecordingSink(auto_ack=False)
    delivery.attach(second, stored_seq=0)  # nothing was stored: both again, times unchanged
    await second.wait_for(lambda: len(second.chunks) == 2)
    assert [list(c.time_marks) for c in second.chunks] == [[0, 1_000], [0, 2_000, 4, 2_500]]
    assert [list(c.time_marks) for c in first.chunks] == [[0, 1_000], [0, 2_000, 4, 2_500]]
    delivery.close()


def test_split_marks_gives_the_rest_the_time_in_effect_where_it_starts() -> None:
    assert split_marks([0, 5, 10, 7], 4) == ((0, 5), [0, 5, 6, 7])
    assert split_marks([0, 5, 4, 7], 4) == ((0, 5), [0, 7])
    assert split_marks([0, 5], 4) == ((0, 5), [0, 5])
