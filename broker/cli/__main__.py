"""``python -m broker.cli`` runs the ``sgb`` command."""

from broker.cli import main

main()
