"""`gantry hook install` details that need no coordinator: existing hooks, bad paths."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import run_cli
from tests.e2e.test_hook import commit, git, make_repos

UNREACHABLE = "127.0.0.1:9"  # discard port: nothing listens


async def test_an_existing_hook_is_never_clobbered(tmp_path: Path) -> None:
    bare, clone = make_repos(tmp_path)
    mine = bare / "hooks" / "post-receive"
    mine.write_text(f"#!/bin/sh\ncat > {tmp_path / 'seen.txt'}\necho from-my-hook >&2\n")
    mine.chmod(0o755)

    code, out, err = await run_cli("hook", "install", "--repo", str(bare), "--coordinator", UNREACHABLE)
    assert code == 1 and b"already exist" in err and b"--force" in err and b"Traceback" not in err
    assert "from-my-hook" in mine.read_text()

    code, out, err = await run_cli("hook", "install", "--repo", str(bare), "--coordinator", UNREACHABLE, "--force")
    assert code == 0, err.decode()
    assert b"kept the existing post-receive hook as post-receive.orig" in out
    assert "from-my-hook" in (bare / "hooks" / "post-receive.orig").read_text()

    [rev] = commit(clone, 1)
    push = git(clone, "push", "-q", "origin", "main")
    # The user's hook ran first with the same input; then Gantry's spooled the change.
    assert "from-my-hook" in push.stderr and "1 change(s) spooled" in push.stderr
    assert f"{'0' * 40} {rev} refs/heads/main" in (tmp_path / "seen.txt").read_text()

    # Installing again (Gantry's own hooks now) needs no --force and keeps the .orig.
    code, _, err = await run_cli("hook", "install", "--repo", str(bare), "--coordinator", UNREACHABLE)
    assert code == 0, err.decode()
    assert (bare / "hooks" / "post-receive.orig").exists()


async def test_clear_messages_for_bad_paths(tmp_path: Path) -> None:
    code, _, err = await run_cli("hook", "install", "--repo", str(tmp_path / "nope"), "--coordinator", UNREACHABLE)
    assert code == 1 and b"does not exist" in err and b"Traceback" not in err
    code, _, err = await run_cli("hook", "install", "--repo", str(tmp_path), "--coordinator", UNREACHABLE)
    assert code == 1 and b"is not a git repository" in err
    bare, _ = make_repos(tmp_path)
    code, _, err = await run_cli("hook", "flush", "--repo", str(bare))
    assert code == 1 and b"no Gantry hook is installed" in err
    code, _, err = await run_cli("hook", "install", "--repo", str(bare), "--coordinator", UNREACHABLE,
                                 "--token-file", str(tmp_path / "missing-token"))
    assert code == 1 and b"cannot read the token file" in err


async def test_a_token_file_gone_at_push_time_keeps_the_changes(tmp_path: Path) -> None:
    bare, clone = make_repos(tmp_path)
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    code, _, err = await run_cli("hook", "install", "--repo", str(bare), "--coordinator", UNREACHABLE,
                                 "--token-file", str(token))
    assert code == 0, err.decode()
    token.unlink()
    commit(clone, 2)
    push = git(clone, "push", "-q", "origin", "main")
    assert f"cannot read the token file {token}: 2 change(s) spooled" in push.stderr
    assert "Traceback" not in push.stderr
    assert len(list((bare / "gantry-spool").glob("*.json"))) == 1
