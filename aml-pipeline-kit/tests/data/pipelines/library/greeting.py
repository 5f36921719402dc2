"""A test fixture of the local runner: a module components share through additional_includes."""

GREETING = "hello from the library"
