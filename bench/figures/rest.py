"""REST ingestion: POST /api/v1/usage-events through the gateway at 64 connections (wrk,
HTTP/1.1, 2 threads), against a bare endpoint of the same ASGI stack (bench/bare_app.py: FastAPI
under uvicorn, one POST route that reads the JSON body and answers {"ok": true}) driven by the
same wrk command and body, in its own process. Target: at least 0.3 x the bare endpoint.

The subscription is set up through the REST API with the stack's key (service, USAGE_BASED plan,
checkout of usr_bench, completed). Every request posts the same event without an
idempotencyKey, so each one is a distinct stored event.

Exactness needs every request wrk sent to have its answer counted, and wrk drops the requests in
flight when its -d time is up. So the Lua script (WRK_SCRIPT) posts for a window of
WINDOW_SECONDS from each thread's first request, then sends nothing more (request() answers an
empty string, which writes no byte) and stops its thread once every POST it sent has been
answered; when both threads have stopped, wrk is sent SIGINT so that it reports at once. Its -d
is only a cap (window + DRAIN_SECONDS). After each run the stored events of
the subscription must be exactly the 2xx answers (count, and sum = count x QUANTITY), with no
other status and no socket error; anything else raises.

Requests/s is the POSTs answered divided by the time from the first request to the last answer
(CLOCK_MONOTONIC through LuaJIT's ffi, so the idle drain does not count). p50/p99 are wrk's
latency histogram of those answers (as `wrk --latency` prints them). Each endpoint gets a short
warm-up run first (also checked, then counted in the stored totals).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.figures import Figure
from bench.stack import Stack
from devstack.postgres import free_port

PATH = "/api/v1/usage-events"
USER = "usr_bench"
EVENT_KEY = "token_generated"
QUANTITY = "1.5"
THREADS, CONNECTIONS = 2, 64
WINDOW_SECONDS, WARMUP_SECONDS, DRAIN_SECONDS = 10, 2, 15
TARGET_RATIO = 0.3

WRK_SCRIPT = r"""
-- bench/figures/rest.py: POST one body for a window, then drain, then stop the thread.
-- args: [1] window seconds, [2] path, [3] Authorization header ("" for none), [4] JSON body
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
unsigned long pthread_self(void);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local window, post, deadline, creator
sent, answered, ok, first, last = 0, 0, 0, 0, 0
statuses = {}

function init(args)
  -- wrk's main thread runs init, then calls the first thread's request() once to check it.
  creator = ffi.C.pthread_self()
  window = tonumber(args[1])
  local headers = {["Content-Type"] = "application/json"}
  if args[3] ~= "" then headers["Authorization"] = args[3] end
  post = wrk.format("POST", args[2], headers, args[4])
end

function request()
  if ffi.C.pthread_self() == creator then return post end
  local t = now()
  if first == 0 then
    first = t
    deadline = t + window
  end
  if t < deadline then
    sent = sent + 1
    return post
  end
  if answered == sent then wrk.thread:stop() end
  return ""
end

function response(status, headers, body)
  last = now()
  answered = answered + 1
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    statuses[status] = (statuses[status] or 0) + 1
  end
  if last >= deadline and answered == sent then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local s, a, o, f, l = 0, 0, 0, math.huge, 0
  local other = {}
  for _, thread in ipairs(threads) do
    s = s + thread:get("sent")
    a = a + thread:get("answered")
    o = o + thread:get("ok")
    f = math.min(f, thread:get("first"))
    l = math.max(l, thread:get("last"))
    for status, count in pairs(thread:get("statuses")) do
      other[status] = (other[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(other) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"sent": %d, "answered": %d, "ok": %d, "seconds": %.6f, "other": {%s}, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"timeout": %d}\n',
    s, a, o, l - f, table.concat(parts, ", "), latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass(frozen=True)
class WrkRun:
    """One wrk run as the Lua script counted it."""

    sent: int
    answered: int
    ok: int
    other: dict[str, int]
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: dict[str, int]

    @property
    def rate(self) -> float:
        return self.answered / self.seconds

    def check(self, what: str) -> None:
        """Raises unless every request sent got a 2xx answer and no socket failed."""
        failed = {name: n for name, n in self.socket_errors.items() if n and name != "timeout"}
        if self.sent != self.answered or self.ok != self.answered or self.other or failed:
            raise RuntimeError(
                f"{what}: {self.sent} sent, {self.answered} answered, {self.ok} 2xx, "
                f"other statuses {self.other}, socket errors {self.socket_errors}"
            )


async def _interrupt_when_drained(process: asyncio.subprocess.Process) -> None:
    """wrk's main thread sleeps out its whole -d even when every worker thread has stopped;
    once only that thread is left (/proc/PID/task), SIGINT wakes it to report at once."""
    tasks = f"/proc/{process.pid}/task"
    started = False
    while process.returncode is None:
        try:
            count = len(os.listdir(tasks))  # /proc: never blocks
        except FileNotFoundError:
            return
        if count > 1:
            started = True
        elif started:
            process.send_signal(signal.SIGINT)
            return
        await asyncio.sleep(0.05)


async def run_wrk(url: str, authorization: str, body: str, window: int) -> WrkRun:
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as directory:
        script = Path(directory) / "post.lua"
        script.write_text(WRK_SCRIPT)
        process = await asyncio.create_subprocess_exec(
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{window + DRAIN_SECONDS}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
            "--",
            str(window),
            PATH,
            authorization,
            body,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await _interrupt_when_drained(process)
        out, err = await process.communicate()
    lines = [line for line in out.decode().splitlines() if line.startswith("BENCH ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({process.returncode}): {out.decode()} {err.decode()}")
    found: dict[str, Any] = json.loads(lines[-1].removeprefix("BENCH "))
    if found["seconds"] <= 0:
        raise RuntimeError(f"wrk answered nothing: {out.decode()}")
    return WrkRun(
        sent=found["sent"],
        answered=found["answered"],
        ok=found["ok"],
        other=found["other"],
        seconds=found["seconds"],
        p50_ms=found["p50_us"] / 1000,
        p99_ms=found["p99_us"] / 1000,
        max_ms=found["max_us"] / 1000,
        socket_errors={k: found[k] for k in ("connect", "read", "write", "timeout")},
    )


@dataclass(frozen=True)
class Subscription:
    service_id: str
    plan_id: str
    id: str


def client(stack: Stack, timeout: float = 30) -> httpx.AsyncClient:
    """An HTTP client of the gateway with the stack's key."""
    return httpx.AsyncClient(
        base_url=stack.gateway_url,
        headers={"Authorization": f"Bearer {stack.api_key}"},
        timeout=timeout,
    )


async def post(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POSTs JSON; anything but 2xx raises with the answer."""
    response = await api.post(path, json=body)
    if not response.is_success:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


async def subscribe(stack: Stack, api: httpx.AsyncClient, name: str) -> Subscription:
    """A usage-based subscription of usr_bench, set up through the REST API only; returns once
    metering knows it."""
    service = await post(api, "/api/v1/services", {"name": name})
    plan = await post(
        api,
        f"/api/v1/services/{service['id']}/plans",
        {
            "name": f"{name} usage",
            "pricingType": "USAGE_BASED",
            "billingInterval": "MONTH",
            "amount": "0.000010",
        },
    )
    session = await post(
        api,
        "/api/v1/checkout-sessions",
        {
            "planId": plan["id"],
            "userId": USER,
            "successUrl": "https://example.com/success",
            "cancelUrl": "https://example.com/cancel",
        },
    )
    completed = await post(api, f"/api/v1/checkout-sessions/{session['id']}/complete", {})
    subscription = Subscription(service["id"], plan["id"], completed["subscriptionId"])
    connection = await asyncpg.connect(stack.dsn)
    try:
        for _ in range(200):
            status = await connection.fetchval(
                "SELECT status FROM metering.subscriptions WHERE id = $1", subscription.id
            )
            if status == "ACTIVE":
                return subscription
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    raise RuntimeError(f"metering never saw subscription {subscription.id} active")


async def stored(dsn: str, subscription_id: str) -> tuple[int, Decimal]:
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT count(*) AS n, coalesce(sum(quantity), 0) AS total "
            "FROM metering.usage_events WHERE subscription_id = $1",
            subscription_id,
        )
    finally:
        await connection.close()
    assert row is not None
    return int(row["n"]), Decimal(row["total"])


async def _measure_gateway(stack: Stack, body: str, subscription_id: str) -> WrkRun:
    authorization = f"Bearer {stack.api_key}"
    runs = []
    for window in (WARMUP_SECONDS, WINDOW_SECONDS):
        run = await run_wrk(stack.gateway_url, authorization, body, window)
        run.check(f"gateway, {window} s run")
        runs.append(run)
        acknowledged = sum(r.ok for r in runs)
        count, total = await stored(stack.dsn, subscription_id)
        if count != acknowledged or total != acknowledged * Decimal(QUANTITY):
            raise RuntimeError(
                f"stored {count} events summing {total}; wrk got {acknowledged} 2xx answers "
                f"(sum {acknowledged * Decimal(QUANTITY)})"
            )
    return runs[-1]


async def _measure_bare(body: str) -> WrkRun:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as probe:
            for _ in range(300):
                try:
                    if (await probe.post(PATH, content=body)).is_success:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the bare endpoint did not start")
        run = await run_wrk(url, "", body, WARMUP_SECONDS)
        run.check("bare endpoint, warm-up")
        run = await run_wrk(url, "", body, WINDOW_SECONDS)
        run.check("bare endpoint")
        return run
    finally:
        server.terminate()
        await server.wait()


async def measure(stack: Stack) -> list[Figure]:
    async with client(stack) as api:
        subscription = await subscribe(stack, api, "bench rest")
    body = json.dumps(
        {
            "serviceId": subscription.service_id,
            "subscriptionId": subscription.id,
            "userId": USER,
            "eventKey": EVENT_KEY,
            "quantity": QUANTITY,
        }
    )
    bare = await _measure_bare(body)
    gateway = await _measure_gateway(stack, body, subscription.id)
    print(
        f"  rest: gateway {gateway.answered} POSTs in {gateway.seconds:.2f} s, "
        f"p50 {gateway.p50_ms:.1f} ms, p99 {gateway.p99_ms:.1f} ms, max {gateway.max_ms:.1f} ms; "
        f"bare {bare.answered} in {bare.seconds:.2f} s, p50 {bare.p50_ms:.1f} ms, "
        f"p99 {bare.p99_ms:.1f} ms",
        file=sys.stderr,
        flush=True,
    )
    name = f"REST POST {PATH}, c={CONNECTIONS}"
    return [
        Figure(
            name,
            gateway.rate,
            "requests/s",
            baseline="bare FastAPI endpoint",
            baseline_value=bare.rate,
            target=f">= {TARGET_RATIO} x bare",
            met=gateway.rate >= TARGET_RATIO * bare.rate,
        ),
        Figure(f"{name}, p50 latency", gateway.p50_ms, "ms"),
        Figure(f"{name}, p99 latency", gateway.p99_ms, "ms"),
    ]
