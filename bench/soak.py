#!/usr/bin/env python3
"""The runner behind `make soak` (started by scripts/soak.sh, which builds the release binaries).

Starts Redis (AOF `everysec`, `noeviction`), the provider sandbox (sending INCS `sent`, `delivered`
and `read` callbacks) and the gateway with `deploy/config/sandbox.toml` (its one event subscription,
to the sandbox's webhook recorder, gets every event), each on a free port. Then:

1. Calibration: the full pipeline's rate on this machine, as it runs now: `--calibrate` messages
   sent by a closed loop, divided by the time until every one of them is `read` and every event of
   theirs is delivered.
2. Soak: `--minutes` one-minute slices of open-loop load at half that rate (or `--rate`). After each
   slice: the gateway's RSS, Redis `used_memory`, the load average, the answers' statuses, and
   what is still in flight. The sandbox's request and webhook logs are cleared each minute (its
   totals are kept) so that it stays small.
3. Drain: every message that got a 202 must reach the sandbox and end `read`, with its events
   delivered.

Writes bench/results/<date>-soak.md and -soak.svg (the plot is plain SVG, drawn here).
"""

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

API_KEY = "sandbox-dev-key"
SEND_PATH = "POST /external/messages/whatsapp"
BODY = json.dumps({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "Hello from make soak"})
ROOT = Path(__file__).resolve().parent.parent


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def http(method, url, body=None, timeout=30):
    req = urllib.request.Request(url, method=method, data=body)
    if body is not None:
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", f"Bearer {API_KEY}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def metrics(gw):
    text = http("GET", gw + "/metrics")[1].decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, value = line.rsplit(" ", 1)
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def total(m, name, *must):
    return sum(v for k, v in m.items() if k.split("{")[0] == name and all(x in k for x in must))


def callback_outcomes(m):
    """`gateway_callbacks_total` by its `outcome` label."""
    out = {}
    for k, v in m.items():
        if k.startswith("gateway_callbacks_total{") and v:
            outcome = k.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] = out.get(outcome, 0) + int(v)
    return out


def callbacks_refused(m):
    """Callback answers the provider sees as a failure (not 2xx, so it sends the callback again), by
    status, from the gateway's own HTTP metric."""
    out = {}
    for k, v in m.items():
        if k.startswith("gateway_http_requests_total{") and 'route="/callbacks/' in k and v:
            status = k.split('status="', 1)[1].split('"', 1)[0]
            if not status.startswith("2"):
                out[status] = out.get(status, 0) + int(v)
    return out


def delta(end, start):
    """end − start for two {label: count} maps, keeping the labels that moved."""
    return {k: v - start.get(k, 0) for k, v in sorted(end.items()) if v - start.get(k, 0)}


def server_errors(m):
    """5xx answers by route, from the gateway's own HTTP metric."""
    out = {}
    for k, v in m.items():
        if k.startswith("gateway_http_requests_total{") and 'status="5' in k and v:
            out[k[len("gateway_http_requests_total"):]] = int(v)
    return out


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def loadavg():
    return tuple(float(x) for x in Path("/proc/loadavg").read_text().split()[:3])


class Redis:
    def __init__(self, port):
        self.port = port

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, check=True)
        return out.stdout

    def used_memory(self):
        for line in self.cli("info", "memory").splitlines():
            if line.startswith("used_memory:"):
                return int(line.split(":")[1])
        return 0


class Stack:
    """Redis, the sandbox and the gateway, stopped on exit."""

    def __init__(self, a):
        self.a = a
        self.procs = []
        self.tmp = Path(tempfile.mkdtemp(prefix="soak-", dir=a.tmp))
        self.redis_port, self.sandbox_port, self.gw_port = free_ports(3)
        self.sandbox = f"http://127.0.0.1:{self.sandbox_port}"
        self.gw = f"http://127.0.0.1:{self.gw_port}"

    def spawn(self, cmd, env=None, log=None):
        out = open(self.tmp / log, "w") if log else subprocess.DEVNULL
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def wait_http(self, url, what):
        for _ in range(600):
            try:
                if http("GET", url, timeout=1)[0] == 200:
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{what} did not come up")

    def start(self):
        a = self.a
        (self.tmp / "redis").mkdir()
        self.spawn(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction",
                    "--dir", str(self.tmp / "redis")], log="redis.log")
        self.redis = Redis(self.redis_port)
        for _ in range(100):
            try:
                self.redis.cli("ping")
                break
            except subprocess.CalledProcessError:
                time.sleep(0.1)
        callback = f"{self.gw}/callbacks/incs/sandbox-incs-callback"
        self.spawn([str(a.bin_dir / "provider-sandbox"), "--listen", f"127.0.0.1:{self.sandbox_port}",
                    "--incs-callback-url", callback], env=dict(os.environ, RUST_LOG="warn"), log="sandbox.log")
        self.wait_http(self.sandbox + "/_sandbox/health", "the sandbox")
        config = self.tmp / "gateway.toml"
        config.write_text(gateway_config(a, self.sandbox, self.gw_port, self.redis_port))
        self.gateway = self.spawn([str(a.bin_dir / "gateway"), "--config", str(config)],
                                  env=dict(os.environ, RUST_LOG="warn"), log="gateway.log")
        self.wait_http(self.gw + "/health/ready", "the gateway")

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        # The AOF of throwaway data; the logs stay for a look after a failed run.
        shutil.rmtree(self.tmp / "redis", ignore_errors=True)


def gateway_config(a, sandbox, gw_port, redis_port):
    """deploy/config/sandbox.toml on this run's ports. The lane and the API key get rates above the
    soak's, and message records a retention of `--retention` seconds, so that Redis holds a steady
    window of them rather than every message of the run."""
    text = (ROOT / "deploy/config/sandbox.toml").read_text()
    replacements = [
        ("http://127.0.0.1:8090", sandbox),
        ('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{gw_port}"'),
        ('url = "redis://127.0.0.1:6379"', f'url = "redis://127.0.0.1:{redis_port}"'),
        # The load client's Idempotency-Key records too: kept 24 h by default, they would grow for
        # the whole run.
        ("retention_secs = 604800", f"retention_secs = {a.retention}\nidempotency_retention_secs = {a.retention}"),
        # The gateway's default; `make run`'s 1 s is short for a machine shared with other work.
        ("key_prefix = \"gw\"\ntimeout_ms = 1000", "key_prefix = \"gw\"\ntimeout_ms = 2000"),
        ('name = "incs-whatsapp"\nprovider = "incs"\nrate_per_second = 80\nburst = 10',
         'name = "incs-whatsapp"\nprovider = "incs"\nrate_per_second = 100000\nburst = 1000'),
        ('scopes = ["send", "read", "admin"]', 'scopes = ["send", "read", "admin"]\nrate_per_second = 1000000'),
    ]
    for old, new in replacements:
        if old not in text:
            raise RuntimeError(f"deploy/config/sandbox.toml no longer has {old!r}")
        text = text.replace(old, new)
    return text


def bench_load(a, url, extra):
    # Like a real caller, each send carries its own Idempotency-Key and is sent again with it when a
    # try gets no HTTP answer (a transport error), up to 3 more times.
    cmd = [str(a.bin_dir / "bench-load"), "--url", url, "--body", BODY,
           "--header", f"Authorization: Bearer {API_KEY}", "--retry-transport", "3", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bench-load failed: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def state(s):
    """Progress counters: messages read, events delivered, what waits."""
    m = metrics(s.gw)
    counts = json.loads(http("GET", s.sandbox + "/_sandbox/counts")[1])
    return {
        "accepted": total(m, "gateway_messages_accepted_total"),
        "submitted": total(m, "gateway_status_transitions_total", 'status="submitted"'),
        "read": total(m, "gateway_status_transitions_total", 'status="read"'),
        "events_queued": total(m, "gateway_events_queued_total"),
        "event_backlog": total(m, "gateway_event_backlog"),
        "event_dead_letters": total(m, "gateway_event_dead_letters_total"),
        "webhooks": counts["webhooks"],
        "provider_sends": counts["requests"].get(SEND_PATH, 0),
        "queued": total(m, "gateway_queue_depth"),
        "dead_letters": total(m, "gateway_dead_letters_total"),
        "callback_outcomes": callback_outcomes(m),
        "callbacks_refused": callbacks_refused(m),
        "possible_duplicates": total(m, "gateway_possible_duplicates_total"),
        "server_errors": server_errors(m),
    }


def drained(s, accepted, limit_s):
    """Waits until every accepted message is with the provider and every event delivered, and the
    `read` count has reached `accepted` or stopped moving for 5 s (a refused callback is a status
    that never comes). Returns (ok, state)."""
    deadline = time.monotonic() + limit_s
    st = state(s)
    last_read, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        st = state(s)
        if st["read"] != last_read:
            last_read, still_since = st["read"], time.monotonic()
        settled = st["read"] >= accepted or time.monotonic() - still_since >= 5
        if (st["submitted"] >= accepted and settled and st["event_backlog"] == 0
                and st["webhooks"] >= st["events_queued"] - st["event_dead_letters"]):
            return True, st
        time.sleep(0.5)
    return False, st


def calibrate(a, s):
    """The full pipeline's rate: a closed loop of `--calibrate` sends, to the last `read` and event."""
    before = state(s)
    t0 = time.monotonic()
    r = bench_load(a, s.gw + "/v1/messages", ["--count", str(a.calibrate), "--concurrency", "16"])
    ok = int(r["statuses"].get("202", 0))
    done, st = drained(s, before["submitted"] + ok, 600)
    elapsed = time.monotonic() - t0
    if not done:
        raise RuntimeError(f"calibration did not drain in 600 s: {st}")
    per_message = (st["webhooks"] - before["webhooks"]) / max(ok, 1)
    return ok / elapsed, elapsed, ok, per_message, r


def soak(a, s, rate, raw):
    samples = []
    start = state(s)
    t0 = time.monotonic()
    statuses, tries = {}, {"transport_errors": 0, "retried": 0}
    for minute in range(1, a.minutes + 1):
        r = bench_load(a, s.gw + "/v1/messages", ["--rate", f"{rate:.1f}", "--duration", "60"])
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
        for k in tries:
            tries[k] += r[k]
        st = state(s)
        sample = {
            "minute": minute,
            "elapsed_s": time.monotonic() - t0,
            "rss_kib": rss_kib(s.gateway.pid),
            "redis_used": s.redis.used_memory(),
            "load": loadavg(),
            "statuses": r["statuses"],
            "transport_errors": r["transport_errors"],
            "achieved_rate": r["achieved_rate"],
            "p99_ms": r["p99_ms"],
            "in_flight": st["accepted"] - st["read"],
            "event_backlog": st["event_backlog"],
            "queued": st["queued"],
        }
        samples.append(sample)
        raw.write_text(json.dumps({"start": start, "samples": samples, "statuses": statuses, "tries": tries}))
        print(f"minute {minute}: rss {sample['rss_kib'] / 1024:.1f} MiB, redis {sample['redis_used'] / 2**20:.1f} MiB, "
              f"load {sample['load'][0]:.2f}, statuses {r['statuses']}, not yet read {sample['in_flight']:.0f}, "
              f"event backlog {sample['event_backlog']:.0f}", flush=True)
        # The sandbox's logs would grow with every request; its totals are kept.
        http("DELETE", s.sandbox + "/_sandbox/requests")
        http("DELETE", s.sandbox + "/_sandbox/webhooks")
    return start, samples, statuses, tries


def flat(samples, key):
    """(value at the 5-minute mark, value at the end, change) — or the first sample on shorter runs."""
    mark = next((x for x in samples if x["minute"] == 5), samples[0])
    end = samples[-1]
    return mark[key], end[key], (end[key] - mark[key]) / mark[key] if mark[key] else 0.0


def svg(samples, path):
    """Gateway RSS and Redis memory per minute, each with the ±10 % band around its 5-minute value."""
    w, h, pad, gap = 720, 220, 50, 30
    series = [("gateway RSS (MiB)", "rss_kib", 1024, "#1f77b4"), ("Redis used_memory (MiB)", "redis_used", 2**20, "#d62728")]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{2 * h + gap}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{2 * h + gap}" fill="white"/>']
    xs = [x["minute"] for x in samples]
    xmax = max(xs + [1])
    for i, (title, key, div, colour) in enumerate(series):
        top = i * (h + gap)
        ys = [x[key] / div for x in samples]
        mark = flat(samples, key)[0] / div
        ymax = max(ys + [mark * 1.1]) * 1.15 or 1

        def px(m):
            return pad + (w - 2 * pad) * m / xmax

        def py(v, top=top, ymax=ymax):
            return top + (h - pad) - (h - 2 * pad) * v / ymax
        out.append(f'<text x="{pad}" y="{top + 20}" font-weight="bold">{title}, per minute</text>')
        out.append(f'<line x1="{pad}" y1="{py(0)}" x2="{w - pad}" y2="{py(0)}" stroke="black"/>')
        out.append(f'<line x1="{pad}" y1="{py(0)}" x2="{pad}" y2="{py(ymax)}" stroke="black"/>')
        band_lo, band_hi = py(mark * 0.9), py(mark * 1.1)
        out.append(f'<rect x="{pad}" y="{band_hi}" width="{w - 2 * pad}" height="{band_lo - band_hi}" fill="{colour}" opacity="0.12"/>')
        for frac in (0, 0.5, 1):
            v = ymax * frac
            out.append(f'<text x="{pad - 6}" y="{py(v) + 4}" text-anchor="end">{v:.0f}</text>')
        for m in sorted(set([1, xmax] + [m for m in xs if m % 5 == 0])):
            out.append(f'<text x="{px(m)}" y="{py(0) + 16}" text-anchor="middle">{m}</text>')
        pts = " ".join(f"{px(m):.1f},{py(v):.1f}" for m, v in zip(xs, ys))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for m, v in zip(xs, ys):
            out.append(f'<circle cx="{px(m):.1f}" cy="{py(v):.1f}" r="2.5" fill="{colour}"/>')
        out.append(f'<text x="{w - pad}" y="{top + 20}" text-anchor="end">band: ±10 % of the 5-minute value; x: minute</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def report(a, cal, rate, start, samples, statuses, tries, end, drain_ok, drain_s, out_md, out_svg):
    cal_rate, cal_s, cal_n, events_per_msg, cal_load = cal
    # Tries without an HTTP answer are not statuses: they are counted apart, and a send none of
    # whose tries got an answer keeps the status `0`.
    accepted_202 = statuses.get("202", 0)
    non_202 = {k: v for k, v in statuses.items() if k != "202"}
    five_xx = {k: v for k, v in statuses.items() if k.startswith("5")}
    unanswered = statuses.get("0", 0)
    outcomes = delta(end.get("callback_outcomes", {}), start.get("callback_outcomes", {}))
    refused = delta(end.get("callbacks_refused", {}), start.get("callbacks_refused", {}))
    sandbox_failed = end.get("sandbox_callbacks", {}).get("not_delivered", 0)
    sends = end["provider_sends"] - start["provider_sends"]
    read = end["read"] - start["read"]
    submitted = end["submitted"] - start["submitted"]
    lost = max(0, accepted_202 - submitted)
    not_read = max(0, accepted_202 - read)
    rss = flat(samples, "rss_kib")
    red = flat(samples, "redis_used")
    loads = [x["load"][0] for x in samples]
    gw_errors = {k: v - start["server_errors"].get(k, 0) for k, v in end["server_errors"].items()
                 if v - start["server_errors"].get(k, 0)}
    checks = {
        "gateway RSS flat (end within 10 % of the 5-minute mark)": abs(rss[2]) <= 0.10,
        "Redis memory flat (end within 10 % of the 5-minute mark)": abs(red[2]) <= 0.10,
        "no 5xx (HTTP answers seen by the client, and the gateway's own count)": not five_xx and not gw_errors,
        "every send answered (a try without an HTTP answer is sent again with its Idempotency-Key, "
        "up to 3 times)": unanswered == 0,
        "no lost message (every 202 reached the provider)": drain_ok and lost == 0 and sends >= accepted_202,
        "every callback taken (no non-2xx answer on a callback route, none the sandbox could not deliver), "
        "every message `read`": not refused and not sandbox_failed and not_read == 0,
    }
    L = []
    w = L.append
    w(f"# Soak: {a.minutes} minutes at half the full-pipeline rate ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)")
    w("")
    w(f"Command: `make soak` (`SOAK_MINUTES={a.minutes}`), release build. Redis with AOF (`everysec`) and `noeviction`; "
      "the provider sandbox sends INCS `sent`, `delivered` and `read` callbacks (100, 300, 600 ms after each send); "
      "the gateway runs `deploy/config/sandbox.toml` (2 HTTP workers, one event subscription of 4 partitions "
      f"getting every event) with the WhatsApp lane's and the API key's rates raised above the load, `redis.timeout_ms` "
      f"at the gateway's default 2000 (the file's 1000 is for a quiet laptop) and message "
      f"records kept {a.retention} s after they end (`engine.retention_secs`), as are the load client's "
      f"`Idempotency-Key` records (`engine.idempotency_retention_secs`), so Redis holds a steady window of them.")
    w("")
    w("## Result")
    w("")
    w("| check | result |")
    w("| --- | --- |")
    for k, v in checks.items():
        w(f"| {k} | {'**met**' if v else '**NOT met**'} |")
    w("")
    w(f"- Full-pipeline rate, measured first on this machine: {cal_rate:.0f} messages/s ({cal_n:,} sent by a closed loop "
      f"of 16, {cal_s:.1f} s until the last was `read` and its events delivered; {events_per_msg:.2f} events per message). "
      f"Soak rate: **{rate:.0f}/s**" + (" (set by `SOAK_RATE`)." if a.rate else " (half)."))
    w(f"- Sent {sum(statuses.values()):,} requests: {accepted_202:,} answered 202; other final answers: "
      f"{non_202 or 'none'} (`0`: no try got an HTTP answer: {unanswered}); "
      f"5xx counted by the gateway: {gw_errors or 'none'}.")
    if tries is not None:
        w(f"- Transport errors (tries that got no HTTP answer, seen by the load client): {tries['transport_errors']}; "
          f"sends tried more than once: {tries['retried']}.")
    w(f"- After the load, everything drained in {drain_s:.1f} s: {read:,.0f} messages reached `read`, {submitted:,.0f} "
      f"`submitted` ({not_read:,} never `read`); the sandbox received {sends:,} sends (possible duplicates counted: "
      f"{end['possible_duplicates'] - start['possible_duplicates']:.0f}); lost: **{lost}**; message dead letters: "
      f"{end['dead_letters'] - start['dead_letters']:.0f}; events delivered {end['webhooks'] - start['webhooks']:,} of "
      f"{end['events_queued'] - start['events_queued']:,.0f} queued (event dead letters: "
      f"{end['event_dead_letters'] - start['event_dead_letters']:.0f}).")
    w(f"- Callbacks by outcome (`gateway_callbacks_total`): {outcomes or 'none'}; refused (a non-2xx answer on a "
      f"callback route, `gateway_http_requests_total`): {refused or 'none'}; the sandbox's own count: "
      f"{end.get('sandbox_callbacks', 'not taken in this run')} (`not_delivered`: no HTTP answer). Only a non-2xx answer is a refusal: "
      "`ok`, `buffered` (a report that came before the send's answer was recorded, kept until it is), "
      "`duplicate`, `stale`, `history_only`, `retried` and `unknown_message` are answered 200; `store_unavailable` "
      "is answered 503, and `malformed`, `unknown_event`, `unknown_number`, `unknown_token` and `unauthorized` 4xx.")
    w(f"- Gateway RSS: {rss[0] / 1024:.1f} MiB at the 5-minute mark, {rss[1] / 1024:.1f} MiB at the end ({rss[2]:+.1%}).")
    w(f"- Redis `used_memory`: {red[0] / 2**20:.1f} MiB at the 5-minute mark, {red[1] / 2**20:.1f} MiB at the end ({red[2]:+.1%}).")
    w(f"- Load average (1 min) over the run: {min(loads):.2f} to {max(loads):.2f}, median "
      f"{sorted(loads)[len(loads) // 2]:.2f}, on {os.cpu_count()} cores shared with other work.")
    w("")
    w(f"![gateway RSS and Redis memory per minute]({out_svg.name})")
    w("")
    w("## Per minute")
    w("")
    w("| minute | gateway RSS MiB | Redis used_memory MiB | load 1/5/15 | rate/s | p99 ms | answers | transport errors | not yet `read` | event backlog |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for x in samples:
        w(f"| {x['minute']} | {x['rss_kib'] / 1024:.1f} | {x['redis_used'] / 2**20:.1f} | "
          f"{'/'.join(f'{v:.2f}' for v in x['load'])} | {x['achieved_rate']:.0f} | {x['p99_ms']:.1f} | "
          f"{json.dumps(x['statuses'])} | {x.get('transport_errors', '')} | {x['in_flight']:.0f} | {x['event_backlog']:.0f} |")
    w("")
    w("`answers` are each send's final answer; `transport errors` the tries of the minute that got no HTTP answer "
      "(each sent again with its Idempotency-Key). "
      "`not yet read` is what the gateway accepted and had not yet seen `read` (callbacks come 600 ms after the send), "
      "`event backlog` the subscription's waiting events, both when the minute ended.")
    out_md.write_text("\n".join(L) + "\n")
    return all(checks.values())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", type=Path, required=True)
    p.add_argument("--minutes", type=int, default=30)
    p.add_argument("--rate", type=float, default=0.0, help="messages/s; 0: half the calibrated full-pipeline rate")
    p.add_argument("--calibrate", type=int, default=10000)
    p.add_argument("--retention", type=int, default=180)
    p.add_argument("--out", type=Path, default=ROOT / "bench/results")
    p.add_argument("--tmp", type=Path, default=ROOT / "bench/tmp")
    p.add_argument("--report-from", type=Path, help="write the report again from a run's saved measurements")
    a = p.parse_args()
    a.tmp.mkdir(parents=True, exist_ok=True)
    a.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d-%H%M")
    out_md, out_svg = a.out / f"{stamp}-soak.md", a.out / f"{stamp}-soak.svg"
    if a.report_from:
        m = json.loads(a.report_from.read_text())
        a.minutes = len(m["samples"])
        out_md, out_svg = a.report_from.with_suffix(".md"), a.report_from.with_suffix(".svg")
        svg(m["samples"], out_svg)
        passed = report(a, m["cal"], m["rate"], m["start"], m["samples"], m["statuses"], m.get("tries"), m["end"],
                        m["drained"], m["drain_s"], out_md, out_svg)
        print(out_md.read_text())
        return 0 if passed else 1
    raw = a.tmp / f"{stamp}-soak.json"
    s = Stack(a)
    try:
        s.start()
        cal = calibrate(a, s)
        rate = a.rate or cal[0] / 2
        print(f"full pipeline: {cal[0]:.0f} messages/s; soaking {a.minutes} min at {rate:.0f}/s", flush=True)
        start, samples, statuses, tries = soak(a, s, rate, raw)
        t = time.monotonic()
        ok, end = drained(s, start["submitted"] + statuses.get("202", 0), 600)
        drain_s = time.monotonic() - t
        # A last look once everything is quiet: late duplicates or errors would show here.
        time.sleep(2)
        end = state(s)
        # What the provider saw: callbacks it got a non-2xx for, or no HTTP answer at all.
        log = (s.tmp / "sandbox.log").read_text(errors="replace")
        end["sandbox_callbacks"] = {"refused": log.count("callback refused"),
                                    "not_delivered": log.count("callback not delivered")}
        cal = list(cal[:4]) + [None]
        raw.write_text(json.dumps({"cal": cal, "rate": rate, "start": start, "samples": samples, "statuses": statuses,
                                   "tries": tries, "end": end, "drained": ok, "drain_s": drain_s}))
        print(f"measurements saved in {raw}", flush=True)
        svg(samples, out_svg)
        passed = report(a, cal, rate, start, samples, statuses, tries, end, ok, drain_s, out_md, out_svg)
        print(out_md.read_text())
        print(f"wrote {out_md} and {out_svg}")
        return 0 if passed else 1
    finally:
        s.stop()


if __name__ == "__main__":
    sys.exit(main())
