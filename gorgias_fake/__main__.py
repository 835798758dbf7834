"""``python -m gorgias_fake --port 8080``: serve until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from gorgias_fake.server import FakeGorgias, is_loopback


def main(argv: list[str] | None = None) -> int:
    """Run the fake server until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m gorgias_fake",
                                     description="A fake Gorgias REST API on loopback.")
    parser.add_argument("--host", default="127.0.0.1", help="loopback only")
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    parser.add_argument("--rate-limit", type=int, default=40,
                        help="bucket capacity (0: unlimited)")
    parser.add_argument("--rate-window", type=float, default=20.0,
                        help="seconds for a full bucket to drain")
    parser.add_argument("--latency-ms", default="0,0", help="MIN,MAX added to each answer")
    parser.add_argument("--max-body-bytes", type=int, default=10 * 1024 * 1024)
    parser.add_argument("--email", default="agent@example.com")
    parser.add_argument("--api-key", default="fake-api-key")
    parser.add_argument("--access-token", default="fake-access-token")
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        print(f"refusing to listen on {args.host!r}: the fake server serves loopback only",
              file=sys.stderr)
        return 2
    try:
        low, _, high = args.latency_ms.partition(",")
        latency = (int(low or 0), int(high or low or 0))
    except ValueError:
        print(f"--latency-ms wants MIN,MAX in milliseconds, not {args.latency_ms!r}",
              file=sys.stderr)
        return 2
    if args.rate_window <= 0:
        print("--rate-window must be > 0", file=sys.stderr)
        return 2
    srv = FakeGorgias(args.host, args.port, email=args.email, api_key=args.api_key,
                      access_token=args.access_token, rate_limit=args.rate_limit,
                      rate_window=args.rate_window, latency_ms=latency,
                      max_body_bytes=args.max_body_bytes).start()
    print(f"Fake Gorgias listening on {srv.base_url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
