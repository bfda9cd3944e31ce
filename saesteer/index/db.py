"""A thin DuckDB layer: open (with schema and lock checks), run SQL files, bind parameters, bulk-insert Arrow.

SQL lives in ``features_db/schema/*.sql`` (migrations, applied in order) and ``features_db/queries/*.sql``
(named queries, loaded with :func:`load_query`), read from the ``features_db/`` beside the ``saesteer``
package (:func:`sql_root`; a ``features_db/`` folder in the working directory cannot shadow it). Values are always bound as parameters. Every DuckDB
error is re-raised as :class:`~saesteer.errors.IndexDbError` carrying the SQL that failed.

Writers hold the file only while they commit (a build computes in memory and opens the database for
each condition's transaction), so readers can query while a build runs; a reader that meets the short
write window waits up to ``wait_s`` and then gets :class:`~saesteer.errors.DatabaseLockedError`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from saesteer.errors import DatabaseLockedError, IndexDbError, SchemaVersionError

SCHEMA_VERSION = 3
_MIGRATION = re.compile(r"^(\d{3})_.*\.sql$")


def sql_root() -> Path:
    """The ``features_db/`` folder that holds the schema and the named queries: always the one beside the
    ``saesteer`` package directory, in a checkout (``repo/features_db``), an editable install (the same)
    and a wheel (``site-packages/features_db``, installed as data beside ``saesteer``).

    It is located from this file's path, never through ``sys.path`` or ``import features_db``, so a
    ``features_db/`` folder in the working directory (where index files live by default,
    :func:`saesteer.paths.default_db_path`) can never shadow the SQL.
    """
    return Path(__file__).resolve().parents[2] / "features_db"


def _sql_dir(kind: str) -> Path:
    path = sql_root() / kind
    if not path.is_dir():
        raise IndexDbError(f"the saesteer SQL folder {path} is missing (a broken install?)")
    return path


def migrations() -> list[tuple[int, str, str]]:
    """``(version, filename, sql)`` of every schema file, in order."""
    out = []
    for f in sorted(_sql_dir("schema").iterdir()):
        m = _MIGRATION.match(f.name)
        if m:
            out.append((int(m.group(1)), f.name, f.read_text()))
    return out


def load_query(name: str) -> str:
    """The text of ``features_db/queries/<name>.sql``."""
    f = _sql_dir("queries") / f"{name}.sql"
    if not f.is_file():
        raise IndexDbError(f"no named query {name!r} in {f.parent}")
    return f.read_text()


def _is_lock_error(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return "lock" in msg and ("conflicting" in msg or "could not set" in msg)


_DAMAGE_MARKS = ("could not read enough bytes", "corrupt", "checksum", "invalid database", "not a valid duckdb")


def _damage(path: Path, exc: BaseException) -> IndexDbError | None:
    """A one-line :class:`IndexDbError` naming ``path`` as damaged if DuckDB failed reading the file itself
    (a truncated or corrupt index), else None."""
    msg = str(exc)
    low = msg.lower()
    if not isinstance(exc, (duckdb.IOException, duckdb.InternalException, duckdb.SerializationException)):
        return None
    if not any(m in low for m in _DAMAGE_MARKS):
        return None
    if isinstance(exc, duckdb.IOException) and str(path.name) not in msg and "database" not in low:
        return None  # an I/O error on another file (a Parquet input), not on the index
    return IndexDbError(
        f"{path} is damaged (truncated or corrupt): DuckDB could not read it ({msg.splitlines()[0][:200]}); "
        "restore it from a copy or rebuild it with `saesteer index build`"
    )


class IndexDb:
    """One open connection to an index file. Use as a context manager; :meth:`close` is idempotent."""

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        wait_s: float = 10.0,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise IndexDbError(f"no index at {self.path}; build one with `saesteer index build`")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.con = duckdb.connect(str(self.path), read_only=read_only, config=config or {})
                break
            except duckdb.Error as exc:
                if _is_lock_error(exc):
                    if time.monotonic() < deadline:
                        time.sleep(0.2)
                        continue
                    raise DatabaseLockedError(
                        f"{self.path} is being written by another process; retry when it finishes "
                        f"(DuckDB: {str(exc).splitlines()[0]})"
                    ) from exc
                raise _damage(self.path, exc) or IndexDbError(
                f"cannot open {self.path} as a DuckDB index: {str(exc).splitlines()[0]}"
            ) from exc
        try:
            self._check_schema()
        except duckdb.Error as exc:
            self.con.close()
            raise _damage(self.path, exc) or IndexDbError(f"cannot read {self.path}: {exc}") from exc
        except BaseException:
            self.con.close()
            raise

    # -- lifecycle --------------------------------------------------------------------------------------
    def __enter__(self) -> IndexDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.con.close()
        except duckdb.Error:  # pragma: no cover
            pass

    # -- schema -----------------------------------------------------------------------------------------
    def schema_version(self) -> int | None:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchall()[0]
        if not exists[0]:
            return None
        row = self.con.execute("SELECT max(version) FROM schema_version").fetchall()[0]
        return int(row[0]) if row[0] is not None else None

    def _check_schema(self) -> None:
        version = self.schema_version()
        if version is not None and version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.path} was written by a newer saesteer (schema {version}; this version reads up to "
                f"{SCHEMA_VERSION}); upgrade saesteer"
            )
        if version is None:
            tables = self.con.execute("SELECT count(*) FROM information_schema.tables").fetchall()[0]
            if tables[0]:
                raise SchemaVersionError(f"{self.path} is a DuckDB file but not a saesteer index (no schema_version)")
            if self.read_only:
                raise IndexDbError(f"{self.path} is empty; build an index first")
        if self.read_only:
            return
        current = version or 0
        for v, name, sql in migrations():
            if v > current:
                with self.transaction():
                    self.execute_script(sql, name=name)
                    self.execute("INSERT INTO schema_version (version) SELECT ? WHERE ? > (SELECT max(version) FROM schema_version)", [v, v])

    # -- execution --------------------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Run one statement with bound parameters; errors carry the SQL.

        DuckDB >= 2 refuses new work on a connection with an unfinished result: fetch results fully
        (``fetchall``/``df``/``arrow``) before the next call.
        """
        try:
            return self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        except duckdb.Error as exc:
            if self.read_only and "read-only" in str(exc).lower():
                raise IndexDbError(f"the index is opened read-only: this statement would write ({exc})", sql) from exc
            raise _damage(self.path, exc) or IndexDbError(f"DuckDB error: {exc}", sql) from exc

    def quiet(self) -> None:
        """Turn DuckDB's own progress bar off (refused in some notebook kernels: then leave it)."""
        try:
            self.con.execute("SET enable_progress_bar = false")
        except duckdb.Error:
            pass

    def execute_script(self, sql: str, *, name: str = "<script>") -> None:
        """Run a multi-statement SQL file (no parameters)."""
        try:
            self.con.execute(sql)
        except duckdb.Error as exc:
            raise _damage(self.path, exc) or IndexDbError(f"DuckDB error in {name}: {exc}", sql) from exc

    def query(self, name: str, params: Sequence[Any] | dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Run the named query ``features_db/queries/<name>.sql``."""
        return self.execute(load_query(name), params)

    def fetch_df(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """Run a statement and return a pandas DataFrame."""
        rel = self.execute(sql, params)
        try:
            return rel.df()
        except duckdb.Error as exc:
            raise _damage(self.path, exc) or IndexDbError(f"DuckDB error: {exc}", sql) from exc

    def fetch_arrow(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """Run a statement and return a pyarrow Table."""
        try:
            return self.con.sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise _damage(self.path, exc) or IndexDbError(f"DuckDB error: {exc}", sql) from exc

    @contextmanager
    def transaction(self) -> Iterator[IndexDb]:
        """BEGIN ... COMMIT, or ROLLBACK on any exception (KeyboardInterrupt included)."""
        self.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            try:
                self.con.execute("ROLLBACK")
            except duckdb.Error:  # pragma: no cover
                pass
            raise
        else:
            self.execute("COMMIT")

    def insert_arrow(self, table: str, data: Any) -> int:
        """Bulk-insert a pyarrow Table (or anything DuckDB can scan) whose columns are named like ``table``'s."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", table):
            raise IndexDbError(f"invalid table name {table!r}")
        cols = ", ".join(f'"{c}"' for c in data.column_names)
        view = f"_saesteer_ingest_{table}"
        self.con.register(view, data)
        try:
            self.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {view}")
        finally:
            self.con.unregister(view)
        return int(data.num_rows)
