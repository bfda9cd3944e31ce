"""Where saesteer keeps things: the model cache, the default index, the default SAE.

Every location can be overridden by an environment variable (read at call time, never at import):

- ``SAESTEER_CACHE_DIR``: the user cache (dequantized models); default: platformdirs' user cache dir.
- ``SAESTEER_DB``: the default index file; default: ``./features_db/index.duckdb`` when run from a
  checkout (a ``features_db/`` folder in the working directory), else the user data dir.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

APP = "saesteer"


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The user cache directory (created on demand)."""
    raw = override or os.environ.get("SAESTEER_CACHE_DIR") or user_cache_dir(APP)
    path = Path(raw).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db_path() -> Path:
    """The index file used when no ``--db`` is given."""
    env = os.environ.get("SAESTEER_DB")
    if env:
        return Path(env).expanduser()
    local = Path.cwd() / "features_db"
    if local.is_dir():
        return local / "index.duckdb"
    return Path(user_data_dir(APP)) / "features_db" / "index.duckdb"


def package_data(*parts: str) -> Path:
    """A path inside the installed ``saesteer`` package."""
    return Path(__file__).resolve().parent.joinpath(*parts)


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if a file can be written there (not an existing directory, no parent that is a file);
    else :class:`~saesteer.errors.OutputPathError`. Writers call it before they create anything."""
    from saesteer.errors import OutputPathError

    p = Path(path)
    if p.is_dir():
        raise OutputPathError(f"{p} is a directory; give a file name for the output")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"cannot write {p}: {parent} is a file, not a directory")
            break
    return p
