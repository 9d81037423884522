"""Imports point one way: policies and drivers import neither accessd nor simulators;
simulators never import accessd."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.paths import ROOT

FORBIDDEN = {
    "policies": {"accessd", "simulators", "drivers"},
    "drivers": {"accessd", "simulators"},
    "simulators": {"accessd"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downwards(package: str) -> None:
    files = list((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    offenders = {
        str(f.relative_to(ROOT)): sorted(imported_packages(f) & FORBIDDEN[package])
        for f in files
        if imported_packages(f) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from accessd.models import Person\nimport simulators.cards\n")
    assert imported_packages(bad) == {"accessd", "simulators"}


def imported_modules(path: Path) -> set[str]:
    """Every dotted module a file imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_cli_commands_import_no_other_command() -> None:
    # The parser is main's alone; a command that imported another (or main) would bring
    # back the import circle the command line once had.
    cli = ROOT / "accessd" / "cli"
    commands = {f.stem for f in cli.glob("*.py")} - {"__init__", "common"}
    assert "serve" in commands
    offenders = {
        f.stem: sorted(
            m
            for m in imported_modules(f)
            if m.startswith("accessd.cli") and m.removeprefix("accessd.cli.") in commands
        )
        for f in cli.glob("*.py")
        if f.stem in commands - {"main"}
    }
    assert {k: v for k, v in offenders.items() if v} == {}
