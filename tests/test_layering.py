"""Import layering: auth sits below services (services call auth, never the reverse)."""

from __future__ import annotations

import ast
from pathlib import Path

import emban.auth

AUTH_DIR = Path(emban.auth.__file__).resolve().parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_auth_never_imports_services() -> None:
    files = sorted(AUTH_DIR.glob("*.py"))
    assert {f.name for f in files} >= {"embed_tokens.py", "principal.py", "credentials.py"}
    offenders = {
        f.name: sorted(m for m in _imported_modules(f) if m.split(".")[:2] == ["emban", "services"])
        for f in files
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_the_walker_sees_a_services_import(tmp_path: Path) -> None:
    """The check above can fail: the same walker finds both import forms."""
    probe = tmp_path / "probe.py"
    probe.write_text("from emban.services.validation import lookupable\nimport emban.services\n")
    assert {"emban.services.validation", "emban.services"} <= _imported_modules(probe)
    probe.write_text("from emban import services\n")
    assert "emban.services" in _imported_modules(probe)
