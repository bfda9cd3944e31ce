"""``python -m saesteer`` == ``saesteer``."""

from saesteer.cli.main import main

main()
