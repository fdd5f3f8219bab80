"""`python -m aftermath ...` runs the command-line interface."""

from aftermath.cli import main

main()
