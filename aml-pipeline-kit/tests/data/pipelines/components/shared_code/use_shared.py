"""A test fixture of the local runner: imports what additional_includes copied beside it, writes what it sees."""

import argparse
import json
import zipfile
from pathlib import Path

from greeting import GREETING
from helpers.shout import shout

parser = argparse.ArgumentParser()
parser.add_argument("--report", type=Path, required=True)
args = parser.parse_args()
seen = {
    "greeting": shout(GREETING),
    "files": sorted(path.as_posix() for path in Path().rglob("*") if "__pycache__" not in path.parts),
    "zipped": sorted(zipfile.ZipFile("helpers.zip").namelist()),
}
(args.report / "seen.json").write_text(json.dumps(seen))
