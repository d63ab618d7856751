"""Imports point down `alerts → analytics → usage → entitlements → catalog → accounts → core`: every .py file of
every app (migrations included) is parsed with `ast`, and an import of an app above the file's own fails.
`config` may import any app; apps import `config` only in the modules listed in CONFIG_IMPORTS."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lowest first: an app may import the apps before it in this list.
LAYERS = ["core", "accounts", "catalog", "entitlements", "usage", "analytics", "alerts"]
# The fast paths below DRF share config.api's helpers (the principal, the JSON response, the 503 answer).
CONFIG_IMPORTS = {"entitlements/api.py", "usage/api.py"}


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file; relative imports stay inside the app."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def _violations(root: Path = ROOT) -> list[str]:
    rank = {app: index for index, app in enumerate(LAYERS)}
    problems: list[str] = []
    for app in LAYERS:
        for path in sorted((root / app).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            for line, module in _imported_modules(path):
                top = module.split(".")[0]
                if top in rank and rank[top] > rank[app]:
                    problems.append(f"{relative}:{line} imports {module} ({app} is below {top})")
                elif top == "config" and relative not in CONFIG_IMPORTS:
                    problems.append(f"{relative}:{line} imports {module} (apps import config only in the fast paths)")
    return problems


def test_no_app_imports_an_app_above_it():
    # when
    problems = _violations()
    # then
    assert problems == []


@pytest.mark.parametrize("app", LAYERS)
def test_every_app_of_the_map_exists(app):
    assert (ROOT / app / "apps.py").is_file()


def test_the_check_finds_an_upward_import(tmp_path):
    # given a usage module importing alerts, in a copy of the layout
    for app in LAYERS:
        (tmp_path / app).mkdir()
    (tmp_path / "usage" / "bad.py").write_text("from alerts.tasks import alert_sweep_task\nimport analytics\n")
    (tmp_path / "alerts" / "fine.py").write_text("from usage.models import UsageEvent\nfrom . import tasks\n")
    # when
    problems = _violations(tmp_path)
    # then
    assert problems == [
        "usage/bad.py:1 imports alerts.tasks.alert_sweep_task (usage is below alerts)",
        "usage/bad.py:2 imports analytics (usage is below analytics)",
    ]
