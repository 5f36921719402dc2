"""Hostile data for tests: what a user's CSV may hold where a project expects a plain name."""

# Column names: shell code, placeholders, flags, a separator, a comment, text beyond ASCII.
HOSTILE_COLUMN_NAMES = (
    "x'; touch pwned; echo '",
    '"; rm -rf ~; "',
    "$(id) `id`",
    "${{outputs.prepped_data}}",
    "${{inputs.target_column}}",
    "--help",
    "--input-data",
    "-x",
    "a,b",
    "#comment: yes",
    "ünï cödé ✓",
)
