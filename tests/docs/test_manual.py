"""The manual cannot drift from the code: every example configuration passes the real
`gantry checkconfig`, the site builds with `mkdocs build --strict` (a broken link, a missing
anchor or a page left out of the nav fails), and the README's front door stays true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = sorted((DOCS / "examples").glob("*.py"))
README = ROOT / "README.md"

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INCLUDE = re.compile(r'--8<-- "([^":]+)(?::[\w-]+)?"')


def checkconfig(path: Path) -> subprocess.CompletedProcess[str]:
    # `python -m clients` is the `gantry` command; cwd=ROOT makes it import this tree's code.
    return subprocess.run(
        [sys.executable, "-m", "clients", "checkconfig", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 10, EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_passes_checkconfig(example: Path) -> None:
    proc = checkconfig(example)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{example} is valid" in proc.stdout


def test_every_example_is_shown_in_the_manual() -> None:
    included = {name for page in pages() for name in INCLUDE.findall(page.read_text())}
    assert included <= {p.name for p in EXAMPLES}, "a page includes a missing example"
    assert {p.name for p in EXAMPLES} <= included, "an example file no page shows"


def test_no_whole_configuration_is_inline() -> None:
    """A whole configuration shown in a page must be an included example file (tested above)."""
    inline = [
        f"{page.name}: {body.splitlines()[0]!r}"
        for page in pages()
        for _lang, body in FENCE.findall(page.read_text())
        if "--8<--" not in body and re.search(r"\bMasterConfig\(|\bBuildmasterConfig\b", body)
    ]
    assert inline == []


def test_readme_configuration_passes_checkconfig(tmp_path: Path) -> None:
    configs = [body for lang, body in FENCE.findall(README.read_text())
               if lang == "python" and "MasterConfig(" in body]
    assert configs, "the README shows a configuration"
    for n, body in enumerate(configs):
        path = tmp_path / f"readme_{n}.py"
        path.write_text(body)
        proc = checkconfig(path)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_has_exactly_the_two_setup_commands() -> None:
    text = README.read_text()
    setup = text.split("## Set up\n", 1)[1].split("\n## ", 1)[0]
    assert [body.strip() for _lang, body in FENCE.findall(setup)] == [
        "pip install -e . && gantry up",
        "pip install -e '.[test]' && python -m pytest",
    ]


def test_readme_links_resolve() -> None:
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [t for t in targets if "://" not in t]
    assert local, "the README links into the manual"
    assert [t for t in local if not (ROOT / t).exists()] == []


def test_readme_fits_80_columns() -> None:
    long = [(n, line) for n, line in enumerate(README.read_text().splitlines(), 1)
            if len(line) > 80]
    assert long == []


def test_manual_builds_in_strict_mode(tmp_path: Path) -> None:
    site = tmp_path / "site"
    # cwd=ROOT: the snippets' base path (docs/examples) is relative to it.
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    built = {p.name for p in site.glob("*.html")}
    assert {f"{page.stem}.html" for page in pages()} <= built
    html = "".join(p.read_text() for p in site.glob("*.html"))
    assert "--8&lt;--" not in html and "--8<--" not in html, "a snippet was not included"
    assert "TestsWithRetry" in (site / "custom_step.html").read_text()
    # Offline: the pages load nothing from elsewhere (no CDN scripts or styles).
    assert re.findall(r'<(?:script|link)[^>]+(?:src|href)="https?://', html) == []


def synopsis_lines(page: Path) -> list[str]:
    """The `gantry ...` lines of a page's sh blocks, continuation lines joined."""
    lines = []
    for lang, body in FENCE.findall(page.read_text()):
        if lang == "sh":
            joined = body.replace("\\\n", " ").splitlines()
            lines += [line.split("#", 1)[0] for line in joined if line.startswith("gantry ")]
    return lines


def test_cli_synopsis_matches_gantry_help() -> None:
    """Every option a `gantry ...` line of the manual or the README shows is one that
    `gantry COMMAND --help` lists."""
    assert len(synopsis_lines(DOCS / "cli.md")) >= 25
    lines = sorted({line for page in [*pages(), README] for line in synopsis_lines(page)})
    wrong = []
    for line in lines:
        words = line.split()[1:]
        command = []
        for word in words:
            if not re.fullmatch(r"[a-z]+", word):
                break
            command.append(word)
        options = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", line))
        proc = subprocess.run(
            [sys.executable, "-m", "clients", *command, "--help"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, (command, proc.stderr)
        listed = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", proc.stdout))
        wrong += [f"gantry {' '.join(command)} {opt}" for opt in sorted(options - listed)]
    assert wrong == []
