"""The HTTP client: auth, pacing, retries and error classification.

One ``GorgiasClient`` per process, shared by every sink: a ``requests.Session`` (with
a connection pool as large as ``max_concurrency``), the ``Pacer``, and a thread pool that
keeps at most ``max_concurrency`` requests in flight across all streams.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import backoff
import requests
from requests.adapters import HTTPAdapter
from singer_sdk import metrics

from target_gorgias import __version__
from target_gorgias.endpoints import TEMPLATES
from target_gorgias.pacer import HEADER, Pacer, Stopped
from target_gorgias.request_builder import Call

#: Answers worth another try: Gorgias may have been busy, or down for a moment.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The longest pause between two tries, whatever Retry-After or the backoff says.
MAX_WAIT = 120.0
#: Once the run is stopping (SIGTERM/SIGINT), how long ``close`` waits for requests in
#: flight before it abandons them (their outcome is unknown: never counted, never settled).
STOP_GRACE = 3.0


@dataclass
class Result:
    """What happened to one ``Call``."""

    call: Call
    outcome: str  # "delivered" | "failed" | "not_sent"
    status_code: int | None = None
    body: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    duration_ms: int = 0
    sent_at: str = ""
    url: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    fatal: bool = False
    note: str | None = None
    #: created | updated | unchanged | skipped (sync modes); merged (delete_customer: 301)
    sync_outcome: str | None = None

    @property
    def ok(self) -> bool:
        """True when Gorgias confirmed the call (or a sync mode decided no write was due)."""
        return self.outcome == "delivered"

    @property
    def resource_id(self) -> Any:
        """The ``id`` of the created/updated resource, when the answer has one."""
        return self.body.get("id") if isinstance(self.body, dict) else None

    def describe(self) -> str:
        """One line: what failed and why (stream, records, status, Gorgias' message)."""
        c = self.call
        head = f"stream '{c.stream}'{_records(c.positions)}: {c.method} {self.url}"
        if self.status_code is None:
            return f"{head} failed after {self.attempts} attempt(s): {self.note}"
        text = f"{head} -> HTTP {self.status_code}"
        if self.status_code == 401:
            text += " (Gorgias refused the credentials: check email/api_key or access_token)"
        elif self.status_code == 403:
            text += " (the API key's user lacks permission for this call)"
        elif self.status_code == 409 and c.method == "POST":
            text += f" ({_conflict_fix(c.stream, c.endpoint_id)})"
        if self.error:
            text += f": {self.error.get('msg') or ''}".rstrip()
            data = self.error.get("data")
            if isinstance(data, dict) and data:
                fields = "; ".join(f"{k}: {_join(v)}" for k, v in data.items())
                text += f" [{fields}]"
            elif data:
                text += f" [{_join(data)}]"
        elif self.note:
            text += f": {self.note}"
        return text


def _conflict_fix(stream: str, endpoint_id: str) -> str:
    """What to set when a create is answered 409: the resource already exists."""
    template = TEMPLATES.get(endpoint_id)
    if template is not None and template.lookup is not None:
        return (f"it already exists in Gorgias: to re-run safely set \"mode\": \"upsert\" with "
                f"\"match_on\" on stream '{stream}' (update what exists), or "
                "\"lookup_before_create\": true (skip what exists)")
    return ("it already exists in Gorgias: leave it out of the input, or send it to an "
            "update template instead")


def _records(pos: list[int]) -> str:
    """``, record 3`` / ``, records 1-100`` / ``, records 1, 4, 9`` (empty for no records)."""
    if not pos:
        return ""
    if len(pos) == 1:
        return f", record {pos[0]}"
    if pos == list(range(pos[0], pos[-1] + 1)):
        return f", records {pos[0]}-{pos[-1]}"
    return f", records {', '.join(map(str, pos[:5]))}{'...' if len(pos) > 5 else ''}"


def _join(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return json.dumps(value) if isinstance(value, dict) else str(value)


@dataclass
class Stats:
    """Counters for the end-of-run summary (updated under the client's lock)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    lookups: int = 0
    statuses: Counter[int] = field(default_factory=Counter)


class _Retry(Exception):
    """This attempt failed in a way worth retrying."""

    def __init__(self, note: str, retry_after: float | None = None,
                 maybe_applied: bool = False) -> None:
        super().__init__(note)
        self.note = note
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied


def auth_header(kind: str, email: str | None, secret: str) -> str:
    """The Authorization header value (never logged)."""
    if kind == "bearer":
        return f"Bearer {secret}"
    token = base64.b64encode(f"{email}:{secret}".encode()).decode("ascii")
    return f"Basic {token}"


def parse_error(body: Any) -> dict[str, Any] | None:
    """Gorgias' ``{"error": {"msg", "data"}}``, or None."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return {"msg": err.get("msg"), "data": err.get("data")}
    return None


class GorgiasClient:
    """Sends calls to one Gorgias account; thread-safe; one per process."""

    def __init__(self, *, base_url: str, authorization: str, headers: Mapping[str, str],
                 timeout: float, pacer: Pacer, max_retries: int, max_concurrency: int,
                 ca_bundle: str | None = None, logger: logging.Logger | None = None) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.pacer = pacer
        self.max_retries = max_retries
        self.logger = logger or logging.getLogger("target-gorgias")
        self.stats = Stats()
        self._lock = threading.Lock()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(max_concurrency, 4),
                              max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.verify = ca_bundle or True
        self.session.trust_env = False
        self.session.headers.update({
            "Accept": "application/json",
            "User-Agent": f"target-gorgias/{__version__}",
            **headers,
            "Authorization": authorization,
        })
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency,
                                        thread_name_prefix="gorgias-http")
        self._metrics = metrics.get_metrics_logger()
        self._futures: set[Future[Result]] = set()
        #: Requests still running when ``close`` gave up on them (0 after a clean close).
        self.abandoned = 0
        #: Set on SIGTERM/SIGINT: ``close`` then waits at most ``STOP_GRACE`` seconds.
        self.hurry = threading.Event()

    @property
    def stop(self) -> threading.Event:
        """Set it and no new request starts; requests in flight finish."""
        return self.pacer.stop

    def submit(self, call: Call, on_done: Callable[[Result], None],
               handler: Callable[[Call], Result] | None = None) -> Future[Result]:
        """Send ``call`` on the shared pool; ``on_done`` runs in the worker with the result.

        ``handler`` replaces ``send`` (the sync modes look up before they write).
        """
        send = handler or self.send

        def run() -> Result:
            result = send(call)
            if not self.abandoned:  # an abandoned call's late answer is not accounted
                on_done(result)
            return result

        future = self._pool.submit(run)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Result]) -> None:
        with self._lock:
            self._futures.discard(future)

    def send_all(self, calls: Iterable[Call], on_done: Callable[[Result], None],
                 handler: Callable[[Call], Result] | None = None) -> list[Result]:
        """Send every call (concurrently, up to the pool size) and wait for all of them."""
        futures = [self.submit(c, on_done, handler) for c in calls]
        return [f.result() for f in futures]

    def close(self, grace: float = STOP_GRACE) -> int:
        """Wait for the requests in flight, then release the pool and connections.

        Once ``hurry`` is set (SIGTERM/SIGINT), waits at most ``grace`` seconds more: a
        request that still hangs is abandoned, not waited for. Its outcome is unknown, so
        its result is never accounted (no count, no dead letter, no state past it). Returns
        how many requests were abandoned; the caller must then end the process without
        joining the pool's threads (they may hang until ``timeout``).
        """
        deadline: float | None = None
        while True:
            with self._lock:
                pending = [f for f in self._futures if not f.done()]
            if not pending:
                break
            if self.hurry.is_set():
                deadline = deadline or time.monotonic() + grace
                if time.monotonic() >= deadline:
                    break
            wait_futures(pending, timeout=0.1)
        self.abandoned = len(pending)
        self._pool.shutdown(wait=not pending, cancel_futures=True)
        if not pending:
            self.session.close()
        return self.abandoned

    # -- one call, with its retries ---------------------------------------------------

    def send(self, call: Call) -> Result:
        """Send one call, retrying what is worth retrying; never raises."""
        result = Result(call=call, outcome="not_sent", url=self.base_url + call.path)
        waits = backoff.expo(base=2, factor=1, max_value=60)
        next(waits)
        maybe_applied = call.lookup_first
        started = time.monotonic()
        while True:
            if maybe_applied and call.lookup and self._found_by_lookup(call, result):
                break
            try:
                self._attempt(call, result)
                break
            except Stopped:
                # The run is stopping: not delivered, not failed either. The record stays
                # unsettled, so no state passes it and a resumed run sends it again.
                result.outcome = "not_sent"
                break
            except _Retry as retry:
                maybe_applied = maybe_applied or retry.maybe_applied
                result.note = retry.note
                if self.stop.is_set():
                    # Stopping: the outcome is unknown, so neither delivered nor failed
                    # (never dead-lettered); no state passes it and a resumed run resends it.
                    result.outcome = "not_sent"
                    break
                if result.attempts > self.max_retries:
                    result.outcome = "failed"
                    break
                delay = min(MAX_WAIT, backoff.full_jitter(next(waits)) + random.random() * 0.1)
                if retry.retry_after is not None:
                    delay = min(MAX_WAIT, retry.retry_after)
                with self._lock:
                    self.stats.retries += 1
                self.logger.info(
                    "Retrying %s %s (stream '%s', attempt %d of %d) in %.1fs: %s",
                    call.method, call.path, call.stream, result.attempts + 1,
                    self.max_retries + 1, delay, retry.note,
                )
                if retry.retry_after is None and self.stop.wait(delay):
                    result.outcome = "not_sent"  # stopping: see above
                    break
        result.duration_ms = int((time.monotonic() - started) * 1000)
        return result

    def _attempt(self, call: Call, result: Result) -> None:
        """One try: pace, send, classify. Fills ``result`` or raises ``_Retry``."""
        self.pacer.acquire()
        result.attempts += 1
        if not result.sent_at:
            result.sent_at = dt.datetime.now(dt.timezone.utc).isoformat()
        headers = dict(call.headers)
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self.session.request(
                call.method, result.url, data=call.body, headers=headers,
                timeout=self.timeout, allow_redirects=False,
            )
        except requests.exceptions.ConnectTimeout:
            self._count(None)
            raise _Retry("connection timed out") from None
        except requests.exceptions.Timeout:
            self._count(None)
            raise _Retry(f"no answer within {self.timeout:g}s", maybe_applied=True) from None
        except requests.exceptions.ConnectionError as exc:
            self._count(None)
            raise _Retry(f"connection failed ({_short(exc)})", maybe_applied=True) from None
        except requests.exceptions.RequestException as exc:
            self._count(None)
            raise _Retry(f"request failed ({_short(exc)})", maybe_applied=True) from None
        self._record(call, response, result)

    def _record(self, call: Call, response: requests.Response, result: Result) -> None:
        status = response.status_code
        self._count(status)
        self.pacer.observe(response.headers.get(HEADER))
        metrics.log(self._metrics, metrics.Point(
            "timer", metrics.Metric.HTTP_REQUEST_DURATION, response.elapsed.total_seconds(),
            tags={"stream": call.stream, "endpoint": call.endpoint_id,
                  "http_status_code": status, "status": "succeeded" if status < 400 else "failed"},
        ))
        result.status_code = status
        result.body, problem = _parse_body(response)
        result.error = parse_error(result.body)
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            with self._lock:
                self.stats.throttled += 1
            self.pacer.pause(retry_after if retry_after is not None else 1.0)
            raise _Retry("HTTP 429 Too Many Requests", retry_after=retry_after or 1.0)
        if status in RETRY_STATUSES:
            raise _Retry(f"HTTP {status}", maybe_applied=True)
        if status == 301 and call.endpoint_id == "delete_customer":
            # Gorgias' answer for a customer merged into another: not followed, not a failure.
            result.outcome, result.sync_outcome = "delivered", "merged"
            result.note = (f"the customer was merged into another (HTTP 301 to "
                           f"{response.headers.get('Location')!r}, not followed): not deleted")
            return
        if 300 <= status < 400:
            result.outcome = "failed"
            result.note = (f"redirect to {response.headers.get('Location')!r} not followed "
                           "(credentials are only sent to the configured base URL)")
            return
        if status >= 400:
            result.outcome = "failed"
            result.fatal = status == 401
            result.note = problem or response.reason
            return
        result.outcome = "delivered"
        result.note = problem
        if problem is None and call.endpoint_id.startswith("create_") and result.resource_id is None:
            result.note = (f"HTTP {status} answer to {call.method} {call.path} has no 'id' "
                           "(the resource was accepted, but its id is unknown)")

    def _found_by_lookup(self, call: Call, result: Result) -> bool:
        """Look the resource up (paced, with retries); True if it already exists.

        Used before re-sending a create whose outcome is unknown, and before every create
        with ``lookup_before_create``. If the lookup itself fails, the create is sent
        (at least once beats never).
        """
        assert call.lookup is not None
        path, params = call.lookup
        found, item = self.find(call.stream, path, params)
        if item is None:
            if not found.ok and found.outcome != "not_sent":
                self.logger.warning("Stream '%s': lookup %s failed (%s); sending the create",
                                    call.stream, found.call.path,
                                    found.note or found.status_code)
            return False
        key, value = next(iter(params.items()))
        self.logger.info(
            "Stream '%s': %s already exists in Gorgias (%s=%s, id %s)%s; not sending it again",
            call.stream, path, key, value, item.get("id"),
            " - the earlier try did reach Gorgias" if result.attempts else "",
        )
        result.status_code = 200
        result.body = item
        result.error = None
        result.outcome = "delivered"
        return True

    def find(self, stream: str, path: str, params: dict[str, str]
             ) -> tuple[Result, dict[str, Any] | None]:
        """GET a list endpoint filtered by ``params`` (paced, with retries).

        Returns the answer and its first item (None when nothing matches or the lookup
        failed; an answer without a ``data`` list counts as failed).
        """
        with self._lock:
            self.stats.lookups += 1
        found = self.send(Call(stream, "lookup", "GET", f"{path}?{urlencode(params)}", {}, None))
        data = found.body.get("data") if isinstance(found.body, dict) else None
        if found.ok and not isinstance(data, list):
            found.outcome, found.note = "failed", "the answer has no 'data' list"
        if not found.ok or not data:
            return found, None
        return found, data[0]

    def probe(self) -> Result:
        """``GET /api/account``: the credential check behind ``meltano config test``."""
        call = Call("meltano_test_stream", "account", "GET", "/api/account", {}, None)
        return self.send(call)

    def _count(self, status: int | None) -> None:
        with self._lock:
            self.stats.requests += 1
            if status is not None:
                self.stats.statuses[status] += 1


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _parse_body(response: requests.Response) -> tuple[Any, str | None]:
    """The JSON body (or None) and, when it is not what Gorgias sends, why."""
    content = response.content
    if not content:
        return None, None
    ctype = response.headers.get("Content-Type", "")
    if "json" not in ctype:
        snippet = content[:80].decode("utf-8", "replace").strip()
        return None, f"answer is not JSON ({ctype or 'no Content-Type'}): {snippet!r}"
    try:
        return json.loads(content), None
    except ValueError:
        return None, f"answer is not valid JSON ({len(content)} bytes, truncated?)"
