"""Developer tools, out of the runtime path: ``make run``'s supervisor and the tiny offline models.

Only the CLI and the tests import this package (an import-linter contract keeps it so).
"""
