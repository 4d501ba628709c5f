"""Validates bakeroll JSON summaries against docs/summary.schema.json (draft 2020-12).

Usage: validate_summary.py SCHEMA FILE... -> exit 0 when every file is valid; otherwise each error,
with the path inside the document, on stderr and exit 1. Runs in the local AWS's virtualenv, which
has jsonschema (a dependency of moto[server]).
"""

import json
import sys

from jsonschema import Draft202012Validator


def main(schema_path, files):
    schema = json.load(open(schema_path))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    bad = 0
    for f in files:
        doc = json.load(open(f))
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
            bad += 1
            print(f"{f}: at /{'/'.join(map(str, err.path))}: {err.message}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
