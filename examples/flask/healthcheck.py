#!/usr/bin/env python3
"""Checks that the running app has its settings: GET /config must answer
``"ok": true``. Exit status 0 if so, 1 if not (naming the missing settings,
never a value) or if the app does not answer.

    python3 healthcheck.py                              # the app at $BIND (default 127.0.0.1:8000)
    python3 healthcheck.py --wait 60 http://127.0.0.1:9000/config

``--wait SECONDS`` keeps trying while the app starts. The Dockerfile's
HEALTHCHECK and the CI deploy jobs use it; it needs only the standard library.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import os
import urllib.request


def default_url() -> str:
    """/config of the app gunicorn serves at $BIND (as deploy.sh, gunicorn.conf.py
    and the Dockerfile use it); a wildcard host is asked on loopback."""
    host, _, port = os.environ.get("BIND", "127.0.0.1:8000").rpartition(":")
    if host in ("", "0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/config"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=default_url())
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    args = parser.parse_args()
    deadline = time.monotonic() + args.wait
    while True:
        try:
            with urllib.request.urlopen(args.url, timeout=5) as response:
                body = json.load(response)
            break
        except (OSError, ValueError) as error:
            if time.monotonic() >= deadline:
                print(f"healthcheck: {args.url}: {error}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    if body.get("ok") is True:
        print(f"healthcheck: {args.url}: ok")
        return 0
    missing = ", ".join(body.get("missing") or ["?"])
    print(f"healthcheck: {args.url}: missing {missing}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
