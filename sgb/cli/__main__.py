"""``python -m sgb.cli`` runs the ``sgb`` command."""

from sgb.cli import main

main()
