"""The ``saesteer`` command line (typer). Heavy libraries are imported inside commands, never at import."""
