"""Done-when check on the default model's index: the user's default index when it exists, else a small one
built on the spot (the ``gemma_index`` fixture)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def _default_index(fallback):
    from saesteer.index.db import IndexDb
    from saesteer.paths import default_db_path
    from saesteer.select.catalog import list_builds, load_catalog

    path = default_db_path()
    builds = []
    if path.exists():
        with IndexDb(path, read_only=True) as db:
            builds = [b.build_id for b in list_builds(db) if b.sae_id == "default" and "gemma" in b.model_id]
    if not builds:
        path, build_id = fallback
        builds = [build_id]
    with IndexDb(path, read_only=True) as db:
        cat = load_catalog(db, builds[0])
    langs = [c for c in cat.names if c.startswith("language=")]
    if len(langs) < 2 or not cat.random:
        pytest.skip("the default build needs at least two languages and a random-token condition")
    return path, builds[0], langs


def test_search_returns_a_small_random_filtered_set_per_language(gemma_index):
    from saesteer.select.search import Search

    path, build_id, langs = _default_index(gemma_index)
    for lang in langs:
        res = Search(path, lang, build_id=build_id).drop_random().top(20).run()
        assert 0 < len(res) <= 20, lang
        assert (res.df["f_random"] <= 0.2 * res.df["f_target"] + 1e-12).all(), lang
        assert (res.df["f_target"] > res.df["f_contrast"]).all(), lang
