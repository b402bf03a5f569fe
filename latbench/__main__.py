"""``python -m latbench``: the same command line as the ``latbench`` script."""

from latbench.cli import main

main()
