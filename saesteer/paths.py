"""Where saesteer keeps things: the model cache, the default index, the default SAE.

Every location can be overridden by an environment variable (read at call time, never at import):

- ``SAESTEER_CACHE_DIR``: the user cache (dequantized models); default: platformdirs' user cache dir.
- ``SAESTEER_DB``: the default index file; default: ``./features_db/index.duckdb`` when run from a
  checkout (a ``features_db/`` folder in the working directory), else the user data dir.

Committed reports name files with :func:`portable_path` / :func:`portable_command`: relative to the output
folder or the repository, never with this machine's absolute paths.
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


def repo_root() -> Path | None:
    """The checkout that holds this ``saesteer`` package (a folder with ``pyproject.toml`` beside it), or None
    for an installed package."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def portable_path(path: str | os.PathLike[str], base: str | os.PathLike[str] | None = None) -> str:
    """``path`` as a committed report names it, without this machine's absolute prefix: relative to ``base``
    (the report's output folder) when inside it, else relative to the repository checkout, else ``~/...``
    under the home directory, else ``.../<name>``. A relative ``path`` is returned as it is."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        return str(path)
    p = p.resolve()
    for root in (base, repo_root()):
        if root is not None:
            r = Path(root).expanduser().resolve()
            if p == r or r in p.parents:
                return str(p.relative_to(r)) if p != r else "."
    home = Path.home().resolve()
    if home in p.parents:
        return "~/" + str(p.relative_to(home))
    return ".../" + p.name


def portable_command(command: str, base: str | os.PathLike[str] | None = None) -> str:
    """A shell command line with every absolute path argument (``/x/y`` or ``--opt=/x/y``) made
    :func:`portable_path`."""
    import shlex

    try:
        args = shlex.split(command)
    except ValueError:
        return command

    def fix(arg: str) -> str:
        opt, eq, value = arg.partition("=")
        if eq and opt.startswith("-") and value.startswith(("/", "~")):
            return f"{opt}={portable_path(value, base)}"
        return portable_path(arg, base) if arg.startswith(("/", "~/")) else arg

    return shlex.join(fix(a) for a in args)
