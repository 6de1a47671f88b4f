"""Sub-commands of the ``fusemax`` command line.

Each module here defines ``register(commands)``, which adds its sub-parser to
the ``argparse`` sub-parsers object and sets ``handler`` (a function taking the
parsed arguments and returning the exit status) as a default.  User errors are
raised as ``SpecError`` or ``CascadeError``; the CLI prints them as one line and
exits with status 2.
"""

MODULES = ("cascade", "passes", "simulate")
