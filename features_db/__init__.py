"""The DuckDB schema (``schema/``) and named queries (``queries/``) of saesteer.

A package only so that wheels install these files beside ``saesteer``; nothing imports it. saesteer reads
the SQL from the folder beside its own package (:func:`saesteer.index.db.sql_root`), so a ``features_db/``
folder in the working directory (the default home of index files) never shadows it.
"""
