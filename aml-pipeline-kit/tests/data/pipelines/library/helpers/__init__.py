"""A test fixture of the local runner: a package components share through additional_includes."""
