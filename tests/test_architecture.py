"""The project's dependency rules, checked on the source with `ast` (nothing is imported). This
docstring is where the repository states them (the style guide they come from is kept outside it):

1. protos imports nothing from the project.
2. coordinator/domain imports only the standard library and coordinator.domain.
3. Only coordinator/storage imports SQLAlchemy.
4. Neither coordinator/domain nor coordinator/storage imports grpc.
5. worker_agent and clients import nothing from coordinator, nor from each other; clients may
   name the delegated entry modules ("coordinator.cli", "worker_agent.cli") as strings, to load
   lazily where they are installed.
6. Inside coordinator/domain, a package imports only the packages below it (DOMAIN_LAYERS), so
   the folders read as a map and the domain has no import cycles between concepts.
7. Events are built only by their factories in coordinator/domain/events.py: the domain decides
   what happened, storage records it (no `Event(...)` anywhere else in the product).
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"protos", "coordinator", "worker_agent", "clients", "notifiers", "bench", "tests"}
# Modules `clients` may name in a string for lazy loading (`gantry coordinator|checkconfig|worker`).
DELEGATED_ENTRY_MODULES = {"coordinator.cli", "worker_agent.cli"}
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


@dataclass(frozen=True)
class Import:
    file: Path
    line: int
    module: str  # absolute dotted name

    @property
    def top(self) -> str:
        return self.module.split(".")[0]

    def __str__(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}: imports {self.module}"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, text: str | None = None) -> list[Import]:
    tree = ast.parse(path.read_text() if text is None else text, filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):  # includes imports inside functions and TYPE_CHECKING blocks
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append(Import(path, node.lineno, module))
            # `from pkg import submodule` reaches pkg.submodule too.
            found += [Import(path, node.lineno, f"{module}.{a.name}") for a in node.names if a.name != "*"]
    return found


def files_under(*dirs: str) -> list[Path]:
    out = []
    for d in dirs:
        base = ROOT / d
        out += sorted(base.rglob("*.py")) if base.is_dir() else ([base] if base.is_file() else [])
    return out


def imports_under(*dirs: str) -> list[Import]:
    return [imp for f in files_under(*dirs) for imp in imports_of(f)]


def test_the_checked_packages_exist() -> None:
    for d in ("coordinator/domain", "coordinator/storage", "coordinator/api", "protos", "worker_agent", "clients"):
        assert files_under(d), f"{d} has no Python files"


def test_protos_import_nothing_from_the_project() -> None:
    bad = [str(i) for i in imports_under("protos") if i.top in PROJECT - {"protos"}]
    assert bad == []


def test_domain_imports_only_stdlib_and_itself() -> None:
    bad = [
        str(i)
        for i in imports_under("coordinator/domain")
        if not (i.top in STDLIB or i.module == "coordinator.domain" or i.module.startswith("coordinator.domain."))
    ]
    assert bad == []


def test_only_storage_imports_sqlalchemy() -> None:
    # The tests and the benchmarks may fill a database directly (10 000 builds in one insert).
    everything = [f for f in ROOT.rglob("*.py") if f.relative_to(ROOT).parts[0] in PROJECT - {"tests", "bench"}]
    bad = [
        str(i)
        for f in everything
        if not f.is_relative_to(ROOT / "coordinator" / "storage")
        for i in imports_of(f)
        if i.top == "sqlalchemy"
    ]
    assert bad == []
    assert any(i.top == "sqlalchemy" for i in imports_under("coordinator/storage"))


def test_domain_and_storage_do_not_import_grpc() -> None:
    bad = [
        str(i)
        for i in imports_under("coordinator/domain", "coordinator/storage")
        if i.top in {"grpc", "grpc_tools", "grpc_health", "grpc_reflection", "google"}
        or i.top == "protos"
    ]
    assert bad == []


@pytest.mark.parametrize(("package", "forbidden"), [("worker_agent", {"coordinator", "clients"}),
                                                    ("clients", {"coordinator", "worker_agent"})])
def test_agent_and_clients_share_only_protos(package: str, forbidden: set[str]) -> None:
    bad = [str(i) for i in imports_under(package) if i.top in forbidden | {"notifiers", "bench", "tests"}]
    assert bad == []


DOTTED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
IMPORT_CALLS = {"import_module", "__import__"}


def is_project_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@pytest.mark.parametrize(("package", "forbidden"), [("worker_agent", {"coordinator", "clients"}),
                                                    ("clients", {"coordinator", "worker_agent"})])
def test_no_lazy_imports_by_name_except_the_delegated_entry_points(package: str, forbidden: set[str]) -> None:
    """importlib.import_module("coordinator.x") would dodge the import rule: a string naming a
    module of a forbidden package is allowed only for the delegated CLI entry modules."""
    bad = []
    for f in files_under(package):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Call) and _called_name(node) in IMPORT_CALLS and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and str(arg.value).split(".")[0] in forbidden:
                    bad.append(f"{f.relative_to(ROOT)}:{node.lineno}: imports {arg.value!r} by name")
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            name = node.value
            if (DOTTED_NAME.match(name) and name.split(".")[0] in forbidden and is_project_module(name)
                    and name not in DELEGATED_ENTRY_MODULES):
                bad.append(f"{f.relative_to(ROOT)}:{node.lineno}: names {name!r}")
    assert bad == []


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def test_the_checker_sees_relative_and_nested_imports() -> None:
    """The rules are only as good as the parser: check it on a sample."""
    probe = ROOT / "coordinator" / "domain" / "probe.py"  # never written: parsed from text
    text = "from . import model\nfrom .. import app\nfrom .x import y\ndef f():\n    import grpc\n"
    got = {i.module for i in imports_of(probe, text)}
    assert {"coordinator.domain.model", "coordinator.app", "coordinator.domain.x.y", "grpc"} <= got
    assert is_project_module("coordinator.cli") and not is_project_module("coordinator.log")


def test_only_the_web_server_imports_aiohttp() -> None:
    """HTTP is an adapter: the webhook dialects and receiver are plain Python, like the domain; the
    HTTP API (coordinator/web/api) and the web UI (coordinator/web/ui) are HTTP handlers. The one
    other user is the notifiers' outbound client (the commit-status and chat requests)."""
    everything = [f for f in ROOT.rglob("*.py") if f.relative_to(ROOT).parts[0] in PROJECT - {"tests"}]
    # The HTTP adapters: the server, the auth middleware + login routes it installs, and the
    # notifiers' outbound client.
    adapters = {
        ROOT / "coordinator" / "web" / "server.py",
        ROOT / "coordinator" / "web" / "auth.py",
        ROOT / "notifiers" / "webclient.py",
    }
    bad = [
        str(i)
        for f in everything
        if f not in adapters
        and f.relative_to(ROOT).parts[:3] not in (("coordinator", "web", "api"), ("coordinator", "web", "ui"))
        for i in imports_of(f)
        if i.top == "aiohttp"
    ]
    assert bad == []


# The domain's packages, lowest first. A module may import its own package and any package of a
# lower layer; the bottom modules (value types, events, ports) import only each other.
DOMAIN_BOTTOM = {"results", "errors", "location", "model", "events", "ports"}
DOMAIN_LAYERS: list[set[str]] = [
    {"changes", "properties", "workers", "auth"},
    {"steps"},
    {"builds"},
    {"scheduling"},
    {"status"},
]


def _domain_unit(module: str) -> str:
    """The bottom module or the package a coordinator.domain module belongs to."""
    return module.split(".")[2] if module.count(".") >= 2 else ""


def _layer(unit: str) -> int:
    if unit in DOMAIN_BOTTOM:
        return 0
    for i, layer in enumerate(DOMAIN_LAYERS, start=1):
        if unit in layer:
            return i
    raise AssertionError(f"coordinator.domain.{unit} is in no layer of DOMAIN_LAYERS")


def test_every_domain_module_belongs_to_a_layer() -> None:
    units = {_domain_unit(module_name(f)) for f in files_under("coordinator/domain")} - {""}
    for unit in units:
        _layer(unit)


def test_domain_packages_import_only_lower_layers() -> None:
    bad = []
    for f in files_under("coordinator/domain"):
        own = _domain_unit(module_name(f))
        if not own:
            continue
        for i in imports_of(f):
            if not i.module.startswith("coordinator.domain."):
                continue
            other = _domain_unit(i.module)
            if other == own or other == "":
                continue
            if _layer(other) >= _layer(own) and not (own in DOMAIN_BOTTOM and other in DOMAIN_BOTTOM):
                bad.append(f"{i} (layer {_layer(own)} may not import layer {_layer(other)})")
    assert bad == []


def test_events_are_built_only_by_their_factories() -> None:
    # codec.py rebuilds a stored event from its row: a read, not a new event.
    allowed = {ROOT / "coordinator" / "domain" / "events.py", ROOT / "coordinator" / "storage" / "codec.py"}
    bad = []
    for f in files_under("coordinator", "notifiers"):
        if f in allowed:
            continue
        for node in ast.walk(ast.parse(f.read_text(), filename=str(f))):
            # `Event(...)` or `events.Event(...)`; asyncio.Event() and status_pb2.Event are other classes.
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if (isinstance(func, ast.Name) and func.id == "Event") or (
                isinstance(func, ast.Attribute) and func.attr == "Event"
                and isinstance(func.value, ast.Name) and func.value.id == "events"
            ):
                bad.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert bad == []
