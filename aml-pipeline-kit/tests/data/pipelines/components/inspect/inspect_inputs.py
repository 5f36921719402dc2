"""A test fixture of the local runner: records what the step sees of its inputs and where it runs."""

import argparse
import json
import os
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--folder", type=Path, required=True)
parser.add_argument("--rows", type=Path)
parser.add_argument("--label", required=True)
parser.add_argument("--ratio", required=True)
parser.add_argument("--flag", required=True)
parser.add_argument("--report", type=Path, required=True)
args = parser.parse_args()
Path("written-beside-the-script.txt").write_text("a step may write into its working folder\n")
seen = {
    "folder": str(args.folder),
    "files": sorted(path.relative_to(args.folder).as_posix() for path in args.folder.rglob("*") if path.is_file()),
    "rows": args.rows.read_text() if args.rows else None,
    "rows_path": str(args.rows) if args.rows else None,
    "label": args.label,
    "ratio": args.ratio,
    "flag": args.flag,
    "cwd": os.getcwd(),
    "report_was_empty": not any(args.report.iterdir()),
}
(args.report / "seen.json").write_text(json.dumps(seen, indent=2))
