#!/usr/bin/env python3
"""Print what the Flask app received from envcloak, masking every value.

    envcloak run -- python3 show_config.py

Shows each setting as its first 2 characters, an ellipsis and its length (e.g.
``de… (36 chars)``), enough to see that the right secret arrived without
printing it. Exits 1 if a required setting is missing.
"""

from __future__ import annotations

import os
import sys

from app import OPTIONAL_KEYS, REQUIRED_KEYS, create_app


def masked(value: object) -> str:
    """First 2 characters, an ellipsis and the length; never the whole value."""
    text = str(value)
    if len(text) < 8:
        # Too short to show any of it safely.
        return f"… ({len(text)} chars)"
    return f"{text[:2]}… ({len(text)} chars)"


def main() -> int:
    app = create_app()
    missing = []
    print("Flask config received through the environment:")
    for key in REQUIRED_KEYS + OPTIONAL_KEYS:
        value = app.config.get(key)
        if value is None or value == "":
            if key in REQUIRED_KEYS:
                missing.append(key)
                print(f"  {key:<15} MISSING (required)")
            else:
                print(f"  {key:<15} not set (optional)")
        elif key.endswith("_FILE"):
            # A path, not a secret: show it, and what the file holds (its size).
            with open(value, "rb") as handle:
                size = len(handle.read())
            print(f"  {key:<15} {value} (a readable file of {size} bytes)")
        else:
            print(f"  {key:<15} {masked(value)}")
    if missing:
        print(
            f"error: missing {', '.join('FLASK_' + key for key in missing)}; "
            "run through envcloak: envcloak run -- python3 show_config.py",
            file=sys.stderr,
        )
        return 1
    print(f"OK: all {len(REQUIRED_KEYS)} required settings are set (pid {os.getpid()}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
