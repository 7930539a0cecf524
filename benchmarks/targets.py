"""What every benchmark ends with: its targets, PASS or FAIL each, and a JSON of all it measured."""

import json
from pathlib import Path


def report(checks: dict[str, bool], payload: dict, out: Path) -> int:
    """Print each target's verdict, write `payload` (with the verdicts) to `out`; exit status 0 only if all pass."""
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**payload, "checks": checks}, indent=1))
    print(f"wrote {out}")
    return 0 if all(checks.values()) else 1
