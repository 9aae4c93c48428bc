"""Secrets in every form they are commonly printed in, redacted on the worker and on the
coordinator (the same engine: the two copies must be identical), whole and at every split
position of a stream, multi-line values line by line under any line ending."""

from __future__ import annotations

import base64
import json
import shlex
import urllib.parse
from pathlib import Path

import pytest

from coordinator.domain.properties import redaction as coordinator_copy
from worker_agent import redact as worker_copy
from worker_agent.redact import MIN_LINE, Redactor, forms

ROOT = Path(__file__).resolve().parents[2]
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVjN0cmVhbGx5c2Vj\n"
    "cmV0a2V5bWF0ZXJpYWxoZXJlMDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0\n"
    "-----END PRIVATE KEY-----\n"
)
TOKEN = "s3cr3t/t0ken+with space&amp'quote\"dq"


def test_the_worker_and_the_coordinator_run_the_same_engine() -> None:
    assert Path(worker_copy.__file__).read_bytes() == Path(coordinator_copy.__file__).read_bytes(), (
        "coordinator/domain/properties/redaction.py must be a copy of worker_agent/redact.py"
    )


def encodings(value: str) -> dict[str, bytes]:
    raw = value.encode()
    out = {
        "raw": raw,
        "url": urllib.parse.quote(value, safe="").encode(),
        "url-plus": urllib.parse.quote_plus(value).encode(),
        "json": json.dumps(value)[1:-1].encode(),
        "shell": shlex.quote(value).encode(),
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
    }
    for k in range(3):  # the value at each offset mod 3 inside a longer encoded blob
        out[f"base64+{k}"] = base64.b64encode(b"ab"[:k] + raw + b"tail")
        out[f"base64url+{k}"] = base64.urlsafe_b64encode(b"xy"[:k] + raw + b"tail")
    return out


def leaked(value: str, output: bytes) -> list[str]:
    """The forms of `value` still readable in `output` (base64 decoded back at every offset)."""
    found = [name for name, enc in encodings(value).items()
             if name.startswith(("raw", "url", "json", "hex", "HEX")) and enc in output]
    core = value.encode()[: 12]
    for chunk in output.split():
        for alt in (None, b"-_"):
            for cut in range(4):
                try:
                    decoded = base64.b64decode(chunk[cut:] + b"===", altchars=alt)
                except ValueError:
                    continue
                if core in decoded:
                    found.append(f"base64 {chunk[:20]!r}")
    return found


@pytest.mark.parametrize("value", [TOKEN, PEM, PEM.replace("\n", "\r\n")])
def test_every_encoding_is_hidden_whole(value: str) -> None:
    r = Redactor([("key", value)])
    for name, enc in encodings(value).items():
        out = r.whole(b"before " + enc + b" after")
        assert b"<secret key>" in out, name
        assert not leaked(value, out), (name, out[:200])


def test_each_line_of_a_multi_line_secret_under_any_line_ending() -> None:
    r = Redactor([("pem", PEM)])
    lines = [line for line in PEM.splitlines() if len(line) >= MIN_LINE]
    assert len(lines) == 4
    for line in lines:
        assert r.whole(f"key line: {line}\n".encode()) == b"key line: <secret pem>\n"
    for ending in ("\n", "\r\n", "\r"):
        assert r.whole(ending.join(PEM.splitlines()).encode()).count(b"<secret pem>") == 1
    for ending in ("\n", "\r\n"):  # the JSON-escaped PEM, as a JSON document shows it
        doc = json.dumps({"key": ending.join(PEM.splitlines())}).encode()
        assert PEM.splitlines()[1].encode() not in r.whole(doc) and b"<secret pem>" in r.whole(doc)


@pytest.mark.parametrize("name", sorted(encodings(PEM)))
def test_at_every_split_position_of_a_stream(name: str) -> None:
    r = Redactor([("pem", PEM), ("tok", TOKEN)])
    payload = b"log: " + encodings(PEM)[name] + b" and " + TOKEN.encode() + b" end\n"
    whole = r.whole(payload)
    for split in range(1, len(payload)):
        s = r.stream()
        out = s.feed(payload[:split]) + s.feed(payload[split:]) + s.flush()
        assert out == whole, (name, split)
    assert not leaked(PEM, whole) and TOKEN.encode() not in whole


def test_output_is_held_back_only_while_it_may_be_a_secret() -> None:
    s = Redactor([("tok", TOKEN)]).stream()
    assert s.feed(b"hello world\n") == b"hello world\n"
    assert s.feed(b"x s3cr") == b"x "  # may be the start of the token
    assert s.feed(b"atch") == b"s3cratch"


def test_short_fragments_do_not_hide_ordinary_text() -> None:
    assert all(len(f) >= 3 for f in forms("abc"))
    r = Redactor([("pin", "1234")])
    assert r.whole(b"build 5 of 9") == b"build 5 of 9"


def test_a_secret_in_a_path_is_detected_even_in_part() -> None:
    r = Redactor([("tok", TOKEN)])
    assert r.leaks_into("wd-" + TOKEN[:9])
    assert r.leaks_into("build/" + urllib.parse.quote(TOKEN, safe=""))
    assert not r.leaks_into("wd-build")


def test_the_worker_refuses_a_build_directory_named_after_a_secret(tmp_path: Path) -> None:
    from protos.gantry.v1 import worker_pb2
    from worker_agent.runner import CommandRunner, StartError

    def runner(workdir: str) -> CommandRunner:
        start = worker_pb2.StartCommand(command_id="c1", builder_dir="b", workdir=workdir, argv=["true"],
                                        redactions=[worker_pb2.Redaction(name="tok", value=TOKEN)])
        return CommandRunner(start, tmp_path, sink=None)  # type: ignore[arg-type]

    assert runner("build").directory() == tmp_path / "b" / "build"
    with pytest.raises(StartError, match="contains a secret"):
        runner("wd-" + TOKEN[7:17]).directory()
