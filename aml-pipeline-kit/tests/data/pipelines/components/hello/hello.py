"""A test fixture of the local runner: a step without inputs or outputs."""

print("hello from a step without inputs or outputs")
