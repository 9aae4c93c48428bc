"""Regenerate the Python code for the Gantry API: ``python -m protos.codegen [--check]``.

Generated ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` live next to the ``.proto`` files and
are committed. ``--check`` regenerates into a temporary directory and fails on any difference,
so a stale checkout is caught by the test suite.
"""

from __future__ import annotations

import filecmp
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos" / "gantry" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("*.proto"))


def generate(out_dir: Path) -> None:
    """Run protoc (from grpcio-tools) over every proto file into ``out_dir``."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(p.relative_to(ROOT)) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def generated_names() -> list[str]:
    return sorted(p.stem + s for p in proto_files() for s in GENERATED_SUFFIXES)


def check() -> list[str]:
    """Names of generated files that differ from what the protos produce now."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / "protos" / "gantry" / "v1"
        stale = []
        for name in generated_names():
            committed = PROTO_DIR / name
            if not committed.exists() or not filecmp.cmp(fresh / name, committed, shallow=False):
                stale.append(name)
        return stale


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--check" in argv:
        stale = check()
        if stale:
            print("stale generated code: " + ", ".join(stale))
            print("run: python -m protos.codegen")
            return 1
        print("generated code is up to date")
        return 0
    generate(ROOT)
    print(f"generated {len(generated_names())} files in {PROTO_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
