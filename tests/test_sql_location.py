"""The SQL is read from the ``features_db/`` beside the ``saesteer`` package, never through ``sys.path``: a
``features_db/`` folder in the working directory (where index files live) cannot shadow it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sql_root_is_beside_the_package():
    from saesteer.index.db import load_query, migrations, sql_root

    assert sql_root() == ROOT / "features_db"
    assert load_query("select_builds") == (ROOT / "features_db" / "queries" / "select_builds.sql").read_text()
    assert next(name for _, name, _ in migrations()) == "001_init.sql"


def test_a_features_db_folder_in_the_working_directory_does_not_shadow_the_sql(tmp_path):
    shadow = tmp_path / "features_db"
    (shadow / "queries").mkdir(parents=True)
    (shadow / "schema").mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the shadow package was imported')\n")
    (shadow / "queries" / "select_builds.sql").write_text("SELECT 'shadow'\n")
    (shadow / "schema" / "001_init.sql").write_text("CREATE TABLE shadow (x INTEGER);\n")
    code = (
        "import sys; from saesteer.index.db import load_query, sql_root, IndexDb\n"
        "print(sql_root()); print(repr(load_query('select_builds')))\n"
        "db = IndexDb('features_db/index.duckdb'); print(db.schema_version()); db.close()\n"
        "print('features_db' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == str(ROOT / "features_db")
    assert "shadow" not in out[1] and "builds" in out[1]
    assert int(out[2]) >= 1  # the real migrations created the index inside the shadow folder
    assert out[3] == "False"  # features_db was never imported
    assert (shadow / "index.duckdb").is_file()
