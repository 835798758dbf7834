"""The HTTP server: lifecycle, the request log, auth, rate limit, faults, control API."""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import email.utils
import hmac
import ipaddress
import json
import math
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from target_gorgias.fake_server.api import GorgiasApi, Req
from target_gorgias.fake_server.limits import LeakyBucket, check_fault
from target_gorgias.fake_server.model import (
    FAULT_MSG,
    LIMIT_HEADER,
    TOO_MANY,
    UNAUTHORIZED,
    ApiError,
)


@dataclass
class Reply:
    """What the HTTP handler writes (or, with ``drop``, does not write)."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: str | None = None
    delay: float = 0.0
    trickle: float = 0.0  # seconds between the body's small pieces (a trickled answer)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
        """A JSON answer; ``None`` gives an empty body."""
        if payload is None:
            return cls(status, headers=dict(headers or {}))
        return cls(status, json.dumps(payload).encode(), "application/json",
                   dict(headers or {}))


class FakeGorgias:
    """The fake server: start it, point the target at ``base_url``, inspect what arrived."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 email: str = "agent@example.com", api_key: str = "fake-api-key",
                 access_token: str = "fake-access-token", rate_limit: int | None = 40,
                 rate_window: float = 20.0, latency_ms: tuple[int, int] = (0, 0),
                 max_body_bytes: int = 10 * 1024 * 1024) -> None:
        if not is_loopback(host):
            raise ValueError(f"the fake server listens on loopback only, not {host!r}")
        self.host, self.port = host, port
        self.email, self.api_key, self.access_token = email, api_key, access_token
        self.latency_ms = (int(latency_ms[0]), int(latency_ms[1]))
        self.max_body_bytes = max_body_bytes
        self._lock = threading.RLock()
        self._bucket = LeakyBucket(rate_limit, rate_window)
        self._httpd: _Server | None = None
        self._api = GorgiasApi(email)
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeGorgias:
        """Serve in a daemon thread; returns self."""
        server_class = _Server6 if ":" in self.host else _Server
        httpd = server_class((self.host.strip("[]"), self.port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True, name=f"fake-gorgias-{self.port}").start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(httpd.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FakeGorgias:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- inspection and control ------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything: store, request log, faults, bucket level, counters."""
        with self._lock:
            self._api.reset()
            self._log: list[dict[str, Any]] = []
            self._faults: list[dict[str, Any]] = []
            self._bucket.level, self._bucket.at = 0.0, time.monotonic()
            self._bucket.recent.clear()
            self._in_flight = self._max_in_flight = 0

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of every /api request received, in arrival order.

        An entry is logged when the request arrives; ``status`` is filled in before the
        answer is written (0 for a dropped connection), so a client that got its answer
        always finds its entry complete.
        """
        with self._lock:
            return copy.deepcopy(self._log)

    @property
    def store(self) -> dict[str, dict[int, dict[str, Any]]]:
        """A snapshot of the data: resource -> {id: object} (tickets with their messages)."""
        with self._lock:
            return self._api.snapshot()

    @property
    def outbox(self) -> list[dict[str, Any]]:
        """Messages Gorgias would have delivered (agent messages created without
        ``sent_datetime``): ``message_id``, ``ticket_id``, ``channel``, ``to``."""
        with self._lock:
            return copy.deepcopy(self._api.outbox)

    def add_fault(self, **rule: Any) -> None:
        """Queue a fault rule; rules are tried in order and used up by matching requests.

        Keys: ``count`` (default 1), ``method``, ``path`` (prefix of the decoded path) and
        one action: ``status`` (+ ``when`` "before"|"after", ``body`` raw string,
        ``content_type``, ``headers``; 429 takes ``retry_after``, None to send none),
        ``drop`` ("before"|"after"), ``delay_ms`` (the write is applied, the answer waits),
        ``raw`` ({status, body, content_type, headers}: sent instead of the real answer),
        ``echo_credentials`` (true for 400, or a status: nothing is applied and the answer
        echoes the request's Authorization header and the decoded key or token, as a
        careless proxy or debug endpoint might).
        ``commit_delay_ms`` (slow commit: the write is applied only after this delay, even
        if the client gave up meanwhile), ``trickle_ms`` (the answer's body trickles in,
        8 bytes every ``trickle_ms``), ``non_json`` (the write is applied, its 2xx answer
        is an HTML page), ``ignore_filter`` (a list endpoint ignores its filters and lists
        everything). ``retry_after`` also works with other statuses (503);
        ``retry_after_date: true`` sends it as an HTTP date.
        """
        checked = check_fault(rule)
        with self._lock:
            self._faults.append(checked)

    def faults(self) -> list[dict[str, Any]]:
        """The pending fault rules, with their remaining counts."""
        with self._lock:
            return copy.deepcopy(self._faults)

    def configure(self, rate_limit: int | None = None, rate_window: float | None = None,
                  latency_ms: tuple[int, int] | list[int] | None = None) -> None:
        """Change the rate limit (0 = unlimited), its window or the latency while running."""
        with self._lock:
            self._bucket.configure(rate_limit, rate_window)
            if latency_ms is not None:
                low, high = int(latency_ms[0]), int(latency_ms[-1])
                self.latency_ms = (min(low, high), max(low, high))

    @property
    def rate_limit(self) -> int:
        """Capacity of the bucket (0: unlimited)."""
        return self._bucket.limit

    @property
    def rate_window(self) -> float:
        """Seconds for a full bucket to drain."""
        return self._bucket.window

    def consume(self, n: int) -> None:
        """Another client on the account made ``n`` requests."""
        with self._lock:
            self._bucket.add(int(n))

    def stats(self) -> dict[str, Any]:
        """Counts of requests and answered statuses ("0": dropped), concurrency, the bucket
        and the store."""
        with self._lock:
            return {
                "requests": len(self._log),
                "status_counts": dict(Counter(str(r["status"]) for r in self._log
                                              if r["status"] is not None)),
                "max_concurrent": self._max_in_flight,
                "in_flight": self._in_flight,
                "faults_applied": sum(1 for r in self._log if r["fault"]),
                "faults_pending": sum(r["count"] for r in self._faults),
                "rate_limit": self._bucket.limit, "rate_window": self._bucket.window,
                "call_limit_header": self._bucket.header(),
                "store_counts": self._api.counts(),
                "messages_delivered": len(self._api.outbox),
            }

    # -- one request -----------------------------------------------------------------------

    def authenticate(self, header: str | None) -> tuple[str | None, bool]:
        """(scheme, ok) for an Authorization header: Basic email:api_key or Bearer token."""
        scheme, _, value = (header or "").strip().partition(" ")
        if scheme.lower() == "bearer":
            return "bearer", hmac.compare_digest(value.strip().encode(),
                                                 self.access_token.encode())
        if scheme.lower() == "basic":
            try:
                user, sep, password = base64.b64decode(value.strip(), validate=True
                                                       ).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return "basic", False
            ok = (sep == ":" and hmac.compare_digest(user.encode(), self.email.encode())
                  and hmac.compare_digest(password.encode(), self.api_key.encode()))
            return "basic", ok
        return None, False

    def process(self, entry: dict[str, Any], content_type: str, raw_body: bytes | None,
                authorization: str | None = None) -> Reply:
        """Answer one /api request (``raw_body`` None: larger than ``max_body_bytes``)."""
        method, path = entry["method"], entry["path"]
        with self._lock:
            if not entry["auth_ok"]:
                return Reply.json(401, {"error": {"msg": UNAUTHORIZED}},
                                  {LIMIT_HEADER: self._bucket.header()})
            wait = self._bucket.admit()
            fault = None if wait else self._take_fault(method, path)
            if fault and fault.get("status") == 429:
                self._bucket.refund()
            header = {LIMIT_HEADER: self._bucket.header()}
            entry["fault"] = fault and {k: v for k, v in fault.items() if k != "count"}
        if wait or (fault and fault.get("status") == 429):
            retry: Any = math.ceil(wait) if wait else (fault or {}).get("retry_after", 1)
            if retry is not None:
                header["Retry-After"] = _retry_after_value(retry, fault or {})
            return self._fault_reply(429, fault or {}, header, TOO_MANY)
        fault = fault or {}
        if fault.get("echo_credentials"):
            return self._echo_reply(fault["echo_credentials"], authorization or "", header)
        if fault.get("status") and fault.get("retry_after") is not None:
            header["Retry-After"] = _retry_after_value(fault["retry_after"], fault)
        if fault.get("commit_delay_ms"):
            time.sleep(float(fault["commit_delay_ms"]) / 1000)  # slow commit: not yet applied
        if fault.get("drop") == "before":
            return Reply(0, drop="before")
        if fault.get("status") and fault.get("when", "before") == "before":
            return self._fault_reply(int(fault["status"]), fault, header)
        reply = self._apply(entry, content_type, raw_body,
                            ignore_filter=bool(fault.get("ignore_filter")))
        reply.headers.update(header)
        reply.delay = float(fault.get("delay_ms", 0)) / 1000
        reply.trickle = float(fault.get("trickle_ms", 0)) / 1000
        if fault.get("non_json") and 200 <= reply.status < 300:
            reply.body = b"<html><body>OK</body></html>"
            reply.content_type = "text/html; charset=utf-8"
        if fault.get("drop") == "after":
            return Reply(0, drop="after", delay=reply.delay)
        if fault.get("status"):
            return self._fault_reply(int(fault["status"]), fault, header, delay=reply.delay)
        if "raw" in fault:
            raw = fault["raw"]
            return Reply(int(raw.get("status", 200)), str(raw.get("body", "")).encode(),
                         raw.get("content_type", "application/json"),
                         {**header, **raw.get("headers", {})}, delay=reply.delay)
        return reply

    @staticmethod
    def _echo_reply(echo: Any, authorization: str, headers: dict[str, str]) -> Reply:
        """An answer that repeats the credentials it was sent (the ``echo_credentials`` fault)."""
        status = 400 if echo is True else int(echo)
        scheme, _, value = authorization.partition(" ")
        secret = value
        if scheme.lower() == "basic":
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                secret = base64.b64decode(value).decode().partition(":")[2]
        payload: dict[str, Any] = {"error": {"msg": f"Request from {authorization} refused",
                             "data": {"authorization": [authorization], "key": [secret],
                                      "padded": [f" {secret} "]}}}
        if status < 400:
            payload = {"id": 1, "echo": payload["error"]}
        return Reply.json(status, payload, headers)

    @staticmethod
    def _fault_reply(status: int, fault: dict[str, Any], headers: dict[str, str],
                     msg: str | None = None, delay: float = 0.0) -> Reply:
        if "body" in fault:
            body = str(fault["body"]).encode()
        else:
            text = msg or FAULT_MSG.get(status, "Something went wrong.")
            body = json.dumps({"error": {"msg": text}}).encode()
        return Reply(status, body, fault.get("content_type", "application/json"),
                     {**headers, **fault.get("headers", {})}, delay=delay)

    def _take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        for rule in self._faults:
            if rule.get("method") and rule["method"] != method:
                continue
            if rule.get("path") and not path.startswith(rule["path"]):
                continue
            rule["count"] -= 1
            if rule["count"] <= 0:
                self._faults.remove(rule)
            return dict(rule)
        return None

    def _apply(self, entry: dict[str, Any], content_type: str, raw_body: bytes | None,
               ignore_filter: bool = False) -> Reply:
        """Size, route, parse, run the handler: the Gorgias part of the answer.

        ``ignore_filter``: a list request loses every parameter but paging (a server that
        ignores its filter).
        """
        try:
            if raw_body is None:
                raise ApiError(413, "Payload too large.")
            handler, ids = self._api.route(entry["method"], entry["path"])
            body = None
            if raw_body:
                if content_type.split(";")[0].strip().lower() != "application/json":
                    raise ApiError(400, "Content-Type must be application/json.")
                try:
                    body = json.loads(raw_body, parse_constant=_reject_constant)
                except ValueError:
                    raise ApiError(400, "Invalid JSON.") from None
            if body is None and entry["method"] != "GET":  # no body: an empty object
                body = {}
            with self._lock:
                entry["body"] = body if raw_body else None
                query = entry["query"]
                if ignore_filter:
                    query = {k: v for k, v in query.items() if k in _PAGING}
                status, payload = handler(Req(entry["method"], entry["path"], query, body), ids)
                return Reply.json(status, payload)
        except ApiError as exc:
            location = getattr(exc, "location", None)
            return Reply.json(exc.status, exc.body,
                              {"Location": location} if location else None)


#: List parameters a filter-ignoring server still honours.
_PAGING = ("cursor", "limit", "order_by")


def _retry_after_value(seconds: Any, fault: dict[str, Any]) -> str:
    """``Retry-After`` as whole seconds (at least 1) or, with ``retry_after_date``, a date."""
    wait = max(1, math.ceil(float(seconds)))
    if fault.get("retry_after_date"):
        return email.utils.formatdate(time.time() + wait, usegmt=True)
    return str(wait)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# -- HTTP ----------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    """Many concurrent requests: daemon threads and a deep accept queue."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: FakeGorgias

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.connections: set[socket.socket] = set()
        super().__init__(*args, **kwargs)


class _Server6(_Server):
    address_family = socket.AF_INET6


_HTML_404 = (b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n"
             b"<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you "
             b"entered the URL manually please check your spelling and try again.</p>\n")


class _BadRequest(Exception):
    """The request framing itself is broken (answered 400, connection closed)."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "FakeGorgias/1.0"
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed ACK

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is ``FakeGorgias.requests``."""

    def setup(self) -> None:
        super().setup()
        with self.server.fake._lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.fake._lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _read_body(self, limit: int) -> tuple[bytes | None, int]:
        """(body, size); body None when it is over ``limit`` bytes (read and discarded)."""
        chunks: list[bytes] = []
        size = 0

        def take(n: int) -> None:
            nonlocal size
            while n > 0:
                piece = self.rfile.read(min(n, 65536))
                if not piece:
                    raise _BadRequest("body shorter than announced")
                size, n = size + len(piece), n - len(piece)
                if size <= limit:
                    chunks.append(piece)

        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(1024).split(b";")[0].strip()
                try:
                    n = int(line, 16)
                except ValueError:
                    raise _BadRequest("bad chunk size") from None
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                take(n)
                self.rfile.readline(8)
        else:
            length = self.headers.get("Content-Length") or "0"
            if not length.strip().isdigit():
                raise _BadRequest("bad Content-Length")
            take(int(length))
        return (b"".join(chunks) if size <= limit else None), size

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        if reply.content_type and (reply.body or reply.status != 204):
            self.send_header("Content-Type", reply.content_type)
        if reply.status != 204:
            self.send_header("Content-Length", str(len(reply.body)))
        for key, value in reply.headers.items():
            self.send_header(key, str(value))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.body and reply.status != 204:
            if reply.trickle:
                self.wfile.flush()
                for at in range(0, len(reply.body), 8):
                    self.wfile.write(reply.body[at:at + 8])
                    self.wfile.flush()
                    time.sleep(reply.trickle)
            else:
                self.wfile.write(reply.body)
        self.wfile.flush()

    def _serve(self, method: str) -> None:
        try:
            self._serve_one(method)
        except OSError:  # includes BrokenPipeError, ConnectionResetError, TimeoutError
            self.close_connection = True  # the client went away (killed or timed out)

    def _serve_one(self, method: str) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        path = unquote(split.path)
        try:
            raw_body, size = self._read_body(fake.max_body_bytes)
        except _BadRequest as exc:
            self.close_connection = True
            self._send(Reply.json(400, {"error": {"msg": f"Bad request: {exc}."}}))
            return
        if split.path == "/_fake" or split.path.startswith("/_fake/"):
            self._send(_control(fake, method, split.path[len("/_fake/"):].strip("/"),
                                parse_qs(split.query), raw_body or b""))
        elif path == "/api" or path.startswith("/api/"):
            self._api(method, path, split, raw_body, size)
        else:
            self._send(Reply(404, _HTML_404, "text/html; charset=utf-8"))

    def _api(self, method: str, path: str, split: Any, raw_body: bytes | None,
             size: int) -> None:
        fake = self.server.fake
        scheme, ok = fake.authenticate(self.headers.get("Authorization"))
        entry: dict[str, Any] = {
            "method": method, "path": path, "raw_path": split.path, "raw_query": split.query,
            "query": parse_qs(split.query, keep_blank_values=True),
            "headers": {k: ("<redacted>" if k.lower() == "authorization" else v)
                        for k, v in self.headers.items()},
            "auth": scheme, "auth_ok": ok, "body": None,
            "raw_body": (raw_body or b"").decode("utf-8", "replace"),
            "has_body": size > 0, "body_bytes": size, "status": None, "fault": None,
            "dropped": None, "client_gone": False, "at": time.monotonic(), "finished_at": None,
        }
        with fake._lock:
            fake._log.append(entry)
            fake._in_flight += 1
            fake._max_in_flight = max(fake._max_in_flight, fake._in_flight)
        try:
            low, high = fake.latency_ms
            if high > 0:
                time.sleep(random.uniform(low, high) / 1000)
            reply = fake.process(entry, self.headers.get("Content-Type", ""), raw_body,
                                 self.headers.get("Authorization"))
            if reply.delay:
                time.sleep(reply.delay)
            with fake._lock:
                entry["status"], entry["dropped"] = reply.status, reply.drop
                entry["finished_at"] = time.monotonic()
            if reply.drop:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            try:
                self._send(reply)
            except OSError:
                with fake._lock:
                    entry["client_gone"] = True
                raise
            with fake._lock:
                entry["finished_at"] = time.monotonic()
        finally:
            with fake._lock:
                fake._in_flight -= 1


def _control(fake: FakeGorgias, method: str, what: str, query: dict[str, list[str]],
             raw_body: bytes) -> Reply:
    """The /_fake/ control API: inspect and drive the fake from another process."""
    try:
        body = json.loads(raw_body) if raw_body.strip() else {}
    except ValueError:
        return Reply.json(400, {"error": {"msg": "Invalid JSON."}})
    try:
        if method == "GET" and what == "requests":
            since = int(query.get("since", ["0"])[0])
            with fake._lock:
                return Reply.json(200, copy.deepcopy(fake._log[since:]))
        if method == "GET" and what == "store":
            return Reply.json(200, {k: {str(i): o for i, o in v.items()}
                                    for k, v in fake.store.items()})
        if method == "GET" and what == "outbox":
            return Reply.json(200, fake.outbox)
        if method == "GET" and what == "stats":
            return Reply.json(200, fake.stats())
        if method == "GET" and what == "faults":
            return Reply.json(200, fake.faults())
        if method == "POST" and what == "reset":
            fake.reset()
            return Reply.json(200, {"ok": True})
        if method == "POST" and what == "faults":
            rules = [check_fault(dict(r)) for r in (body if isinstance(body, list) else [body])]
            for rule in rules:
                fake.add_fault(**rule)
            return Reply.json(200, {"ok": True, "pending": len(fake.faults())})
        if method == "POST" and what == "config":
            fake.configure(body.get("rate_limit"), body.get("rate_window"),
                           body.get("latency_ms"))
            return Reply.json(200, {"ok": True, "rate_limit": fake.rate_limit,
                                    "rate_window": fake.rate_window,
                                    "latency_ms": list(fake.latency_ms)})
        if method == "POST" and what == "consume":
            fake.consume(int(body.get("n", 1)))
            return Reply.json(200, {"ok": True})
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        return Reply.json(400, {"error": {"msg": str(exc)}})
    return Reply.json(404, {"error": {"msg": f"Unknown control endpoint: {method} /_fake/{what}"}})


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
