"""The baseline most connectors use: one request at a time, sleep Retry-After on a 429.

    python benchmarks/naive_client.py --url http://127.0.0.1:8080 --path /api/tags < tags.singer
Prints one JSON line: {"sent": N, "throttled": M, "seconds": S}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import requests


def main() -> None:
    """POST each record's body; on 429 sleep Retry-After and try again."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--email", default="agent@example.com")
    parser.add_argument("--api-key", default="fake-api-key")
    args = parser.parse_args()
    session = requests.Session()
    session.auth = (args.email, args.api_key)
    sent = throttled = 0
    started = time.monotonic()
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("type") != "RECORD":
            continue
        while True:
            response = session.post(args.url + args.path, json=message["record"], timeout=30)
            if response.status_code == 429:
                throttled += 1
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            response.raise_for_status()
            sent += 1
            break
    print(json.dumps({"sent": sent, "throttled": throttled,
                      "seconds": round(time.monotonic() - started, 3)}))


if __name__ == "__main__":
    main()
