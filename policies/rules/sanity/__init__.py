"""Sanity: cross-field rules the schema cannot see, read from the stack that will be applied.

A value the schema (runner/core/settings.py) rejects is not re-checked here: a rule in this area
must be able to fire on settings that load.
"""

CODE = "SAN"
NAME = "sanity"
