"""The lock file that scripts/setup.sh installs from agrees with pyproject.toml and with this environment."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, version = line.partition("==")
        assert version, f"lock line {line!r} is not name==version"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        reqs += [Requirement(r) for r in extra if not r.startswith("saesteer")]
    return reqs


def test_every_declared_dependency_is_locked_within_its_range():
    pins = _lock()
    for req in _declared():
        name = canonicalize_name(req.name)
        assert name in pins, (
            f"{req.name} is declared in pyproject.toml but not pinned in requirements/lock.txt"
        )
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"the lock pins {req.name}=={pins[name]}, outside pyproject.toml's range {req.specifier}"
        )


def test_major_dependencies_have_an_upper_bound():
    for req in _declared():
        if canonicalize_name(req.name) in {
            "torch",
            "transformers",
            "transformer-lens",
            "sae-lens",
            "duckdb",
            "numpy",
        }:
            assert any(s.operator in ("<", "<=", "~=", "==") for s in req.specifier), req


@pytest.mark.parametrize(
    "name", ["torch", "transformers", "transformer-lens", "sae-lens", "duckdb", "numpy", "datasets"]
)
def test_this_environment_runs_the_locked_versions(name):
    """CI installs with scripts/setup.sh; a drifted environment would test versions no user gets."""
    pin = _lock()[canonicalize_name(name)]
    installed = Version(metadata.version(name))
    assert installed == pin, (
        f"{name} {installed} is installed but the lock says {pin}: rerun bash scripts/setup.sh"
    )
