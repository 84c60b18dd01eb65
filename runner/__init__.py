"""The runner: the process that starts the studio, and the CLI over the ``studio`` library.

Later it also holds the scheduling daemon and the REST control API.
"""
