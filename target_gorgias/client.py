"""The HTTP client: auth, pacing, retries and error classification.

One ``GorgiasClient`` per process, shared by every sink: a ``requests.Session`` (with
a connection pool as large as ``max_concurrency``), the ``Pacer``, and a thread pool that
keeps at most ``max_concurrency`` requests in flight across all streams.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.utils
import json
import logging
import math
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
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
from target_gorgias.endpoints import TEMPLATES, Probe
from target_gorgias.outcomes import Outcome, SyncOutcome
from target_gorgias.pacer import HEADER, Pacer, Stopped
from target_gorgias.request_builder import Call

#: Answers worth another try: Gorgias may have been busy, or down for a moment.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The longest backoff pause between two tries (Retry-After is bounded by max_retry_after).
MAX_WAIT = 120.0
#: Once the run is stopping (SIGTERM/SIGINT), how long ``close`` waits for requests in
#: flight before it abandons them (their outcome is unknown: never counted, never settled).
STOP_GRACE = 3.0
#: Creates whose answer must carry the new resource's id.
_CREATES_WITH_ID = ("create_", "add_ticket_message")
#: POSTs that are not creates: sending them twice does no harm.
IDEMPOTENT_POSTS = frozenset({"add_ticket_tags"})
#: A lookup reads at most this many pages of a list before giving up (reported as failed).
MAX_LOOKUP_PAGES = 200


@dataclass
class Result:
    """What happened to one ``Call``."""

    call: Call
    outcome: Outcome
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
    sync_outcome: SyncOutcome | None = None
    #: The method of the request this result reports ("" = the call's; None = no request,
    #: e.g. a sync outcome decided without a write). A lookup's result says GET.
    method: str | None = ""
    uncertain_resends: int = 0  # re-sends of a create whose earlier try may have landed

    def __post_init__(self) -> None:
        if self.method == "":
            self.method = self.call.method

    @property
    def ok(self) -> bool:
        """True when Gorgias confirmed the call (or a sync mode decided no write was due)."""
        return self.outcome == Outcome.DELIVERED

    @property
    def resource_id(self) -> Any:
        """The ``id`` of the created/updated resource, when the answer has one."""
        return self.body.get("id") if isinstance(self.body, dict) else None

    def describe(self) -> str:
        """One line: what failed and why (stream, records, status, Gorgias' message)."""
        c = self.call
        head = f"stream '{c.stream}'{_records(c.positions)}: {self.method or c.method} {self.url}"
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
    uncertain_resends: int = 0
    statuses: Counter[int] = field(default_factory=Counter)


class _Retry(Exception):
    """This attempt failed in a way worth retrying.

    ``maybe_applied``: Gorgias may have applied the request (timeout, dropped connection,
    5xx, a 2xx without a usable body). ``grace``: the write may still land later (no answer
    came back), so a lookup waits ``lookup_grace_seconds`` first. ``throttled``: a 429,
    which does not use up ``max_retries``. ``retry_after``: the pause Gorgias asked for.
    """

    def __init__(self, note: str, retry_after: float | None = None,
                 maybe_applied: bool = False, grace: bool = False,
                 throttled: bool = False) -> None:
        super().__init__(note)
        self.note = note
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied
        self.grace = grace
        self.throttled = throttled


class HeadLookups:
    """``lookup_before_create: auto``: look up the head of each stream, then stop.

    After a crash, the records that may already exist in Gorgias are those delivered after
    the last state the run emitted: at most one state interval's worth, plus the calls in
    flight. A create at position ``p`` of its stream is looked up while
    ``p <= last found position + window``; once ``window`` records in a row after the
    last one found came back absent, no more lookups are made for that stream.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self._last_hit: dict[str, int] = {}
        self._lock = threading.Lock()

    def wants(self, call: Call) -> bool:
        """Should this create be looked up before it is sent?"""
        mode = call.lookup_first
        if mode is True:
            return True
        if mode != "auto" or not call.positions:
            return False
        with self._lock:
            return call.positions[0] <= self._last_hit.get(call.stream, 0) + self.window

    def observe(self, call: Call, found: bool) -> None:
        """Record the outcome of a head lookup."""
        if found and call.positions:
            with self._lock:
                self._last_hit[call.stream] = max(self._last_hit.get(call.stream, 0),
                                                  call.positions[-1])


def head_window(max_concurrency: int, rate_limit: int, rate_window: float,
                state_interval: float) -> int:
    """The ``auto`` window: every call that can be in flight (twice, as lookups also run
    concurrently), plus the calls one state interval can deliver, plus one."""
    per_interval = math.ceil(rate_limit * state_interval / rate_window)
    return 2 * max_concurrency + per_interval + 1


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
                 ca_bundle: str | None = None, logger: logging.Logger | None = None,
                 max_retry_after: float = 300.0, lookup_grace: float = 2.0,
                 head_window: int = 10) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.pacer = pacer
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.lookup_grace = lookup_grace
        self.heads = HeadLookups(head_window)
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
        """Send one call, retrying what is worth retrying; never raises.

        An attempt whose outcome is uncertain (it may have been applied) is never counted as
        delivered: a create that can be looked up is looked up (after the grace delay when
        no answer came back) and only re-sent when the lookup proves it absent; one that
        cannot be looked up is re-sent and counted as an uncertain re-send.
        """
        result = Result(call=call, outcome=Outcome.NOT_SENT, url=self.base_url + call.path)
        waits = backoff.expo(base=2, factor=1, max_value=60)
        next(waits)
        probe = call.lookup if call.method == "POST" else None
        look_first = probe is not None and self.heads.wants(call)
        uncertain = False  # an earlier attempt may have been applied
        settle_at = 0.0  # not before this moment may a lookup trust "absent"
        failures = 0  # attempts that count against max_retries (not 429s)
        throttled = 0.0  # seconds waited on Retry-After for this call
        started = time.monotonic()
        while True:
            if probe is not None and (look_first or uncertain):
                grace = settle_at - time.monotonic()
                if uncertain and grace > 0 and self.stop.wait(grace):
                    result.outcome = Outcome.NOT_SENT
                    break
                verdict = self._verify(call, probe, result, uncertain)
                if look_first:
                    self.heads.observe(call, verdict == "found")
                look_first = False
                if verdict != "absent":
                    break
                uncertain = False
            elif uncertain and self._creates(call):
                result.uncertain_resends += 1
                with self._lock:
                    self.stats.uncertain_resends += 1
                self.logger.warning(
                    "Stream '%s'%s: re-sending %s %s although the earlier try may have "
                    "reached Gorgias (%s); this create cannot be looked up, so it may "
                    "duplicate", call.stream, _records(call.positions), call.method,
                    call.path, result.note)
                uncertain = False
            try:
                self._attempt(call, result, uncertain_before=uncertain)
                break
            except Stopped:
                # The run is stopping: not delivered, not failed either. The record stays
                # unsettled, so no state passes it and a resumed run sends it again.
                result.outcome = Outcome.NOT_SENT
                break
            except _Retry as retry:
                result.note = retry.note
                if retry.maybe_applied:
                    uncertain = True
                    settle_at = time.monotonic() + (self.lookup_grace if retry.grace else 0.0)
                if self.stop.is_set():
                    # Stopping: the outcome is unknown, so neither delivered nor failed
                    # (never dead-lettered); no state passes it and a resumed run resends it.
                    result.outcome = Outcome.NOT_SENT
                    break
                if not retry.throttled:
                    failures += 1
                    if failures > self.max_retries:
                        self._give_up(call, probe, result, uncertain, settle_at)
                        break
                if retry.retry_after is not None:
                    delay = retry.retry_after
                    throttled += delay
                    if delay > self.max_retry_after or throttled > self.max_retry_after:
                        result.error = None
                        result.note = (
                            f"{retry.note}: Gorgias asked to wait {delay:g}s (Retry-After)"
                            + (f", {throttled:g}s in total for this call"
                               if throttled > delay else "")
                            + f", more than max_retry_after ({self.max_retry_after:g}s)")
                        self._give_up(call, probe, result, uncertain, settle_at)
                        break
                    if retry.throttled:
                        self.pacer.pause(delay)  # every thread waits: the account is full
                else:
                    delay = min(MAX_WAIT, backoff.full_jitter(next(waits))
                                + random.random() * 0.1)
                with self._lock:
                    self.stats.retries += 1
                self.logger.info(
                    "Retrying %s %s (stream '%s', attempt %d%s) in %.1fs: %s",
                    call.method, call.path, call.stream, result.attempts + 1,
                    "" if retry.throttled else f", retry {failures} of {self.max_retries}",
                    delay, retry.note,
                )
                if self.stop.wait(delay):
                    result.outcome = Outcome.NOT_SENT  # stopping: see above
                    break
        result.duration_ms = int((time.monotonic() - started) * 1000)
        return result

    @staticmethod
    def _creates(call: Call) -> bool:
        """True for a POST that makes a new resource each time it is sent."""
        return call.method == "POST" and call.endpoint_id not in IDEMPOTENT_POSTS

    def _give_up(self, call: Call, probe: Probe | None, result: Result, uncertain: bool,
                 settle_at: float) -> None:
        """Retries are used up: report the call failed, unless a lookup finds it landed."""
        result.outcome = Outcome.FAILED
        if not (uncertain and probe is not None):
            return
        note = result.note
        grace = settle_at - time.monotonic()
        if grace > 0 and self.stop.wait(grace):
            result.outcome = Outcome.NOT_SENT
            return
        if self._verify(call, probe, result, True) == "absent":
            result.outcome, result.note = Outcome.FAILED, note
            result.method, result.url = call.method, self.base_url + call.path

    def _attempt(self, call: Call, result: Result, uncertain_before: bool = False) -> None:
        """One try: pace, send, classify. Fills ``result`` or raises ``_Retry``."""
        self.pacer.acquire()
        result.attempts += 1
        if not result.sent_at:
            result.sent_at = dt.datetime.now(dt.timezone.utc).isoformat()
        headers = dict(call.headers)
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        deadline = time.monotonic() + self.timeout
        try:
            response = self.session.request(
                call.method, result.url, data=call.body, headers=headers,
                timeout=self.timeout, allow_redirects=False, stream=True,
            )
            _read_within(response, deadline, self.timeout)
        except requests.exceptions.ConnectTimeout:
            self._count(None)
            raise _Retry("connection timed out") from None
        except (requests.exceptions.Timeout, _Late):
            self._count(None)
            raise _Retry(f"no complete answer within {self.timeout:g}s (timeout)",
                         maybe_applied=True, grace=True) from None
        except (requests.exceptions.ConnectionError, OSError) as exc:
            self._count(None)
            raise _Retry(f"connection failed ({_short(exc)})", maybe_applied=True,
                         grace=True) from None
        except requests.exceptions.RequestException as exc:
            self._count(None)
            raise _Retry(f"request failed ({_short(exc)})", maybe_applied=True,
                         grace=True) from None
        self._record(call, response, result, uncertain_before)

    def _record(self, call: Call, response: requests.Response, result: Result,
                uncertain_before: bool = False) -> None:
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
        retry_after = None
        if status in (429, 503):
            retry_after = self._retry_after(response.headers.get("Retry-After"), call)
        if status == 429:
            with self._lock:
                self.stats.throttled += 1
            raise _Retry("HTTP 429 Too Many Requests",
                         retry_after=1.0 if retry_after is None else retry_after,
                         throttled=True)
        if status in RETRY_STATUSES:
            raise _Retry(f"HTTP {status}", maybe_applied=call.method != "GET", grace=True,
                         retry_after=retry_after if status == 503 else None)
        if status == 301 and call.endpoint_id == "delete_customer":
            # Gorgias' answer for a customer merged into another: not followed, not a failure.
            result.outcome, result.sync_outcome = Outcome.DELIVERED, SyncOutcome.MERGED
            result.note = (f"the customer was merged into another (HTTP 301 to "
                           f"{response.headers.get('Location')!r}, not followed): not deleted")
            return
        if 300 <= status < 400:
            result.outcome = Outcome.FAILED
            result.note = (f"redirect to {response.headers.get('Location')!r} not followed "
                           "(credentials are only sent to the configured base URL)")
            return
        if status == 404 and uncertain_before and call.method == "DELETE" and call.body is None:
            result.outcome = Outcome.DELIVERED
            result.note = ("HTTP 404: already deleted (an earlier try, whose answer was lost, "
                           "did reach Gorgias)")
            return
        if status >= 400:
            result.outcome = Outcome.FAILED
            result.fatal = status == 401
            result.note = problem or response.reason
            return
        if problem is None and call.endpoint_id.startswith(_CREATES_WITH_ID) \
                and result.resource_id is None:
            problem = (f"HTTP {status} answer to {call.method} {call.path} has no 'id' "
                       "(the resource may have been created, but its id is unknown)")
        if problem is not None:
            # A 2xx without a usable body: applied or not, we cannot tell from here.
            raise _Retry(problem if problem.startswith("HTTP") else f"HTTP {status}: {problem}",
                         maybe_applied=call.method != "GET")
        result.outcome = Outcome.DELIVERED
        result.note = None

    def _retry_after(self, value: str | None, call: Call) -> float | None:
        """Seconds asked by ``Retry-After`` (a number or an HTTP date); None when absent
        or unusable (a warning says so)."""
        if value is None or not value.strip():
            return None
        wait = parse_retry_after(value)
        if wait is None:
            self.logger.warning("Stream '%s': ignoring Retry-After %r on %s %s (not a number "
                                "of seconds or an HTTP date)", call.stream, value[:80],
                                call.method, call.path)
        return wait

    def _verify(self, call: Call, probe: Probe, result: Result, uncertain: bool) -> str:
        """Look ``call``'s resource up: "found" (result delivered), "absent", "failed"
        (result failed: a failed lookup is never "absent") or "stopped"."""
        found, item, trashed = self.find(call.stream, probe, call.headers)
        if found.outcome == Outcome.NOT_SENT:
            result.outcome = Outcome.NOT_SENT
            return "stopped"
        if not found.ok:
            result.outcome, result.fatal = Outcome.FAILED, found.fatal
            result.method, result.url = "GET", found.url
            result.status_code, result.body = found.status_code, found.body
            said = (found.error or {}).get("msg") or found.note or found.status_code
            result.note = (f"lookup by {probe.key} failed ({said}); the create was not "
                           f"{'re-' if uncertain else ''}sent")
            result.error = {"msg": result.note, "data": (found.error or {}).get("data")}
            result.attempts += found.attempts
            return "failed"
        if item is None:
            if trashed is not None:
                self.logger.warning(
                    "Stream '%s'%s: only a trashed ticket (id %s) has %s=%s; trashed tickets "
                    "are not a match, so a new one is created", call.stream,
                    _records(call.positions), trashed.get("id"), probe.key, probe.value)
            return "absent"
        earlier = result.note
        self.logger.info(
            "Stream '%s'%s: %s already exists in Gorgias (%s=%s, id %s)%s; not sending it "
            "again", call.stream, _records(call.positions), probe.path, probe.key, probe.value,
            item.get("id"), " - the earlier try did reach Gorgias" if uncertain else "")
        result.status_code, result.body, result.error = found.status_code, item, None
        result.method, result.url = "GET", found.url
        result.outcome = Outcome.DELIVERED
        result.note = (f"{earlier}; confirmed by lookup ({probe.key}={probe.value}, "
                       f"id {item.get('id')})") if uncertain and earlier else None
        return "found"

    def find(self, stream: str, probe: Probe, headers: Mapping[str, str] | None = None
             ) -> tuple[Result, dict[str, Any] | None, dict[str, Any] | None]:
        """Look ``probe`` up (paced, with retries): (answer, match, trashed match).

        Every item is checked on our side (``Probe.matches``): the server's filter is never
        trusted, and pages are followed until a match or the end. A trashed ticket is not a
        match (it is returned third, so callers can say so). The answer is failed when a
        page failed or has no ``data`` list.
        """
        with self._lock:
            self.stats.lookups += 1
        params = list(probe.params)
        trashed: dict[str, Any] | None = None
        cursor: str | None = None
        for _ in range(MAX_LOOKUP_PAGES):
            query = params + ([("cursor", cursor)] if cursor else [])
            found = self.send(Call(stream, "lookup", "GET", f"{probe.path}?{urlencode(query)}",
                                   headers or {}, None))
            body = found.body if isinstance(found.body, dict) else {}
            data = body.get("data")
            if found.ok and not isinstance(data, list):
                found.outcome, found.note = Outcome.FAILED, "the answer has no 'data' list"
            if not found.ok or not isinstance(data, list):
                return found, None, None
            for item in data:
                if probe.matches(item):
                    if isinstance(item, dict) and item.get("trashed_datetime"):
                        trashed = trashed or item
                        continue
                    return found, item, None
            meta = body.get("meta")
            cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
            if not cursor or not isinstance(cursor, str):
                return found, None, trashed
        found.outcome = Outcome.FAILED
        found.note = f"no answer after {MAX_LOOKUP_PAGES} pages of {probe.path}"
        return found, None, None

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


def unverifiable_warning(stream: str, endpoint_id: str, method: str, mode: str,
                         lookup_keys: tuple[str, ...] | None, batched: bool,
                         schema_fields: set[str] | None) -> str | None:
    """Why an uncertain create of this stream cannot be looked up (and how to avoid it),
    or None when it can (or the stream does not create)."""
    if method != "POST" or endpoint_id in IDEMPOTENT_POSTS or mode != "create":
        return None
    if lookup_keys and not batched and (
            schema_fields is None or set(lookup_keys) & schema_fields):
        return None
    if lookup_keys and not batched:
        why = (f"its schema has no {' or '.join(lookup_keys)} to look it up by; send "
               f"{' or '.join(lookup_keys)} in each record to make re-sends safe")
    elif lookup_keys:
        why = "batched creates are not looked up; turn batch off to make re-sends safe"
    else:
        why = (f"Gorgias offers no way to look up what {endpoint_id} creates; set "
               "max_retries: 0 to report such a record as failed instead of re-sending it")
    return (f"Stream '{stream}': a create whose outcome is uncertain (timeout, dropped "
            f"connection, 5xx) will be re-sent and may duplicate: {why}")


class _Late(Exception):
    """The answer did not arrive in full before the deadline."""


def _read_within(response: requests.Response, deadline: float, timeout: float) -> None:
    """Read the whole body before ``deadline``, or cut the connection and raise ``_Late``.

    ``timeout`` bounds each socket read; a body that trickles in would pass that test read
    after read, so a timer shuts the socket down at the deadline.
    """
    cut = threading.Event()

    def shut() -> None:
        cut.set()
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        response.close()
        raise _Late
    timer = threading.Timer(remaining, shut)
    timer.daemon = True
    timer.start()
    try:
        _ = response.content
    except (requests.exceptions.RequestException, OSError):
        response.close()
        if cut.is_set():
            raise _Late from None
        raise
    finally:
        timer.cancel()
    if cut.is_set():
        response.close()
        raise _Late


def parse_retry_after(value: str) -> float | None:
    """``Retry-After`` in seconds: a number (``"5"``) or an HTTP date; None if neither.

    A date in the past means 0; a value that is not finite or not a date is None.
    """
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    try:
        return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
    except (OverflowError, ValueError):
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
