"""Secret redaction on the worker: whole values, values split across reads, bounded holding,
and a real command whose output and header carry a secret."""

from __future__ import annotations

import random
from pathlib import Path

from protos.gantry.v1 import worker_pb2
from tests.worker_agent.test_runner import check_stream, run
from worker_agent.redact import Redactor
from worker_agent.runner import CHUNK_SIZE, HEADER, STDERR, STDOUT


def stream_all(redactor: Redactor, pieces: list[bytes]) -> bytes:
    stream = redactor.stream()
    out = b"".join(stream.feed(p) for p in pieces)
    return out + stream.flush()


def split_every(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces, i = [], 0
    for n in sizes:
        pieces.append(data[i : i + n])
        i += n
    pieces.append(data[i:])
    return pieces


def test_whole_values_are_replaced_longest_first() -> None:
    r = Redactor([("short", "abc"), ("long", "abcdef"), ("empty", "")])
    assert r.whole(b"xabcdefy abc abcde") == b"x<secret long>y <secret short> <secret short>de"
    assert r.text("token=abc") == "token=<secret short>"
    assert not Redactor([]) and Redactor([]).text("abc") == "abc"


def test_a_secret_split_at_every_position_is_still_hidden() -> None:
    r = Redactor([("token", "s3cr3t-value")])
    data = b"before s3cr3t-value middle s3cr3t-value after s3cr3t"
    expected = b"before <secret token> middle <secret token> after s3cr3t"
    for cut in range(1, len(data)):
        assert stream_all(r, [data[:cut], data[cut:]]) == expected, cut
    assert stream_all(r, [bytes([b]) for b in data]) == expected


def test_random_splits_match_whole_redaction() -> None:
    rng = random.Random(7)
    secrets = [("a", "hunter2"), ("b", "xyzzy"), ("c", "hunter2hunter")]
    r = Redactor(secrets)
    alphabet = [b"hunter", b"2", b"xyz", b"zy", b"h", b" ", b"x"]
    for _ in range(300):
        data = b"".join(rng.choice(alphabet) for _ in range(40))
        sizes = [rng.randint(0, 9) for _ in range(12)]
        assert stream_all(r, split_every(data, sizes)) == r.whole(data), data


def test_only_a_possible_prefix_is_held_back() -> None:
    stream = Redactor([("token", "password123")]).stream()
    assert stream.feed(b"Enter the pass") == b"Enter the "  # "pass" may start the secret
    assert stream.feed(b"ive voice\n") == b"passive voice\n"
    assert stream.feed(b"x" * 100_000) == b"x" * 100_000  # nothing accumulates
    assert stream.feed(b"passwor") == b""
    assert stream.flush() == b"passwor"


async def test_command_output_and_header_never_carry_the_secret(tmp_path: Path) -> None:
    secret = "tok-" + "Z9" * 20
    filler = CHUNK_SIZE - 7  # the second echo's value straddles the first chunk boundary
    sink, finished = await run(
        tmp_path,
        shell_command=f"echo {secret}; head -c {filler} /dev/zero | tr '\\0' a; "
                      f'printf "%s\\n" "$TOKEN"; echo "$TOKEN" >&2',
        env={"TOKEN": secret},
        redactions=[worker_pb2.Redaction(name="token", value=secret)],
    )
    check_stream(sink)
    assert finished.rc == 0
    everything = b"".join(c.data for c in sink.chunks)
    assert secret.encode() not in everything
    assert sink.chunks[0].channel == HEADER
    assert "echo <secret token>;" in sink.header()
    assert sink.data(STDOUT) == b"<secret token>\n" + b"a" * filler + b"<secret token>\n"
    assert sink.data(STDERR) == b"<secret token>\n"
