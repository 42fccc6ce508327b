#!/usr/bin/env python3
"""The runner behind `make bench` (started by scripts/bench.sh, which builds the binaries and starts
Redis, the provider sandbox and bench-echo, and stops them all at the end).

Scenarios, interleaved S0..S4 for --rounds rounds, each a fixed-connection wrk run:
  S0  bench-echo: a minimal actix-web JSON POST handler (the HTTP ceiling of this machine)
  S1  the sandbox answering INCS WhatsApp sends directly (the upstream ceiling)
  S2  POST /v1/messages with dispatch paused: validate, Redis write, 202
  S3  full pipeline: accept, Redis, worker, INCS sandbox, ack; counted when `submitted`
  S4  S3 with Redis `appendfsync always`
  P1  the peer: a plain Node service (`http` module + BullMQ, bench/peer) queueing the same sends
      and POSTing them to the same sandbox with a worker of concurrency 64; processed = jobs completed
Then: latency at 50 % of S3's median rate (open-loop bench-load), Redis memory per queued message
(dispatch paused), and a CPU profile of the gateway during an S3 run when `perf` works. Writes
bench/results/<date>.md and .png.

Urgency (also alone with BENCH_ONLY=urgency): 100,000 messages stored through
`POST /v1/messages/batch` (dispatch paused; 10,000 recipients, 100 campaigns, priorities mixed),
Redis memory per queued message with the search and campaign indexes, and the latency of
`GET /v1/messages` by recipient, campaign, status and sender; writes bench/results/<date>-urgency.md.

Every S3/S4/latency run checks that every message the gateway accepted reached `submitted`, that
the sandbox received each exactly once, and that no ready, lease or delay entries are left.
"""

import argparse
import datetime as dt
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import redis

SCENARIOS = ["S0", "S1", "S2", "S3", "S4", "P1"]
WHAT = {
    "S0": "bench-echo: minimal actix-web JSON POST handler (HTTP ceiling)",
    "S1": "sandbox INCS `POST /external/messages/whatsapp` directly (upstream ceiling)",
    "S2": "`POST /v1/messages` accept only (validate, Redis write, 202), dispatch paused",
    "S3": "full pipeline to `submitted` (accept, Redis, worker, INCS sandbox, ack)",
    "S4": "S3 with Redis `appendfsync always`",
    "P1": "peer: Node `http` + BullMQ queue and worker (concurrency 64) to the same sandbox, to completed",
}
SENDER, LANE, PREFIX = "hk-main", "incs-whatsapp", "gw"
API_KEY = "sandbox-dev-key"
INCS_CODE = "af92196e-0d07-3c1d-a631-a71c5a1b0001"
GATEWAY_BODY = json.dumps({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "Hello from make bench"})
INCS_BODY = json.dumps({"to": "85268411234", "type": "text", "text": "Hello from make bench"})
TARGETS = {"idle_cmds": 100, "claim_growth": 0.20, "s3_s0": 0.25, "s3_s0_must": 0.15, "s3_p1": 3.0, "s2_s0": 0.40, "accept_p99_ms": 10.0, "a2s_p99_ms": 25.0, "mem_bytes": 2048}
CLK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


class Stop(Exception):
    pass


def on_signal(signum, _frame):
    raise Stop(f"signal {signum}")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# CPU accounting from /proc

def proc_cpu_s(pid):
    """utime + stime of a process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / CLK
    except (OSError, IndexError, ValueError):
        return 0.0


def proc_io(pid):
    """(read syscalls, write syscalls) of a process: each Redis round trip costs its server a read."""
    try:
        with open(f"/proc/{pid}/io") as f:
            v = dict(line.split(": ") for line in f.read().splitlines())
        return int(v["syscr"]), int(v["syscw"])
    except (OSError, KeyError, ValueError):
        return 0, 0


def machine_cpu():
    """(busy seconds, total seconds, steal seconds) of the whole machine since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / CLK, sum(v) / CLK, steal / CLK


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


class CpuWindow:
    """CPU used by each named process, by the whole machine, and by everything else, over a window."""

    def __init__(self, pids):
        self.pids = {k: v for k, v in pids.items() if v}
        self.t0 = time.monotonic()
        self.p0 = {k: proc_cpu_s(p) for k, p in self.pids.items()}
        self.io0 = {k: proc_io(p) for k, p in self.pids.items()}
        self.m0 = machine_cpu()
        self.load0 = loadavg()[0]

    def close(self, loadgen_cpu_s=0.0):
        elapsed = time.monotonic() - self.t0
        per = {k: proc_cpu_s(p) - self.p0[k] for k, p in self.pids.items()}
        per["loadgen"] = loadgen_cpu_s
        io = {k: [b - a for a, b in zip(self.io0[k], proc_io(p))] for k, p in self.pids.items()}
        m1 = machine_cpu()
        busy = m1[0] - self.m0[0]
        return {
            "elapsed_s": elapsed,
            "cpu_s": per,
            "syscalls": io,
            "machine_busy_cores": busy / elapsed,
            "other_cores": max(0.0, busy - sum(per.values())) / elapsed,
            "steal_cores": (m1[2] - self.m0[2]) / elapsed,
            "load1_start": self.load0,
            "load1_end": loadavg()[0],
        }


def wait_quiet(pids, max_wait, threshold):
    """Waits (bounded) until processes other than ours use less than `threshold` cores."""
    deadline = time.monotonic() + max_wait
    while True:
        w = CpuWindow(pids)
        time.sleep(1.0)
        other = w.close()["other_cores"]
        if other < threshold or time.monotonic() >= deadline:
            return other


# ---------------------------------------------------------------------------------------------
# Load generators

def run_child(cmd, env=None):
    """Runs a command to completion; returns (stdout, stderr, CPU seconds it used)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        out, err = p.communicate()
    except BaseException:
        p.kill()
        p.wait()
        raise
    # communicate() has reaped the child; its rusage is in RUSAGE_CHILDREN, so take a delta.
    return out, err, p.returncode


def children_cpu_s():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wrk(args, url, body, headers, duration):
    env = dict(os.environ, BENCH_BODY=body, BENCH_HEADERS="\n".join(headers))
    cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{duration}s", "--timeout", "5s",
           "-s", str(Path(__file__).with_name("wrk-post.lua")), url]
    c0 = children_cpu_s()
    out, err, rc = run_child(cmd, env)
    cpu = children_cpu_s() - c0
    m = re.search(r"^BENCH_JSON (\{.*\})$", out, re.M)
    if rc != 0 or not m:
        raise RuntimeError(f"wrk failed ({rc}): {out}\n{err}")
    r = json.loads(m.group(1))
    secs = r["duration_us"] / 1e6
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    r.update(ok=r["requests"] - r["status_errors"], rate=(r["requests"] - r["status_errors"]) / secs,
             socket_errors=errors, cpu_s=cpu)
    return r


def bench_load(args, url, body, headers, extra):
    cmd = [str(args.bin_dir / "bench-load"), "--url", url, "--body", body]
    for h in headers:
        cmd += ["--header", h]
    c0 = children_cpu_s()
    out, err, rc = run_child(cmd + extra)
    cpu = children_cpu_s() - c0
    if rc != 0:
        raise RuntimeError(f"bench-load failed ({rc}): {err}")
    r = json.loads(out.strip().splitlines()[-1])
    r["cpu_s"] = cpu
    return r


# ---------------------------------------------------------------------------------------------
# HTTP and Redis helpers

def http(method, url, timeout=30, body=None, headers=None):
    req = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def metric_sum(text, name, label_filter=None):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in "{ "):
            if label_filter and label_filter not in line:
                continue
            total += float(line.rsplit(" ", 1)[1])
    return total


def histogram(text, name, must_contain):
    """Cumulative bucket counts {le: count} of one histogram series of a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket{") and all(m in line for m in must_contain):
            le = re.search(r'le="([^"]+)"', line).group(1)
            key = float("inf") if le == "+Inf" else float(le)
            out[key] = out.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return out


def bucket_quantile(before, after, q):
    """The upper bound (ms) of the bucket holding quantile q of the observations between two scrapes."""
    les = sorted(after)
    counts = [after[le] - before.get(le, 0) for le in les]
    total = counts[-1] if counts else 0
    for le, c in zip(les, counts):
        if total and c >= q * total:
            return le * 1000
    return float("nan")


class Store:
    def __init__(self, port):
        self.r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
        self.tag = f"{PREFIX}:{{{SENDER}}}"

    def now_ms(self):
        s, us = self.r.time()
        return s * 1000 + us // 1000

    def reset(self, fsync):
        """Empties Redis, compacts the AOF, sets the fsync policy and clears command stats."""
        self.r.flushall()
        self.r.config_set("appendfsync", fsync)
        try:
            self.r.bgrewriteaof()
        except redis.ResponseError:
            pass  # one is already running
        for _ in range(600):
            p = self.r.info("persistence")
            if not p.get("aof_rewrite_in_progress") and not p.get("aof_rewrite_scheduled"):
                break
            time.sleep(0.05)
        self.r.config_resetstat()

    def flush(self):
        self.r.flushall()
        self.r.config_resetstat()

    def leftovers(self, every_lane=False):
        """Entries left in the ready list(s), lease set and delay set. The cheap form (polled while a
        run drains) reads the one lane's list; `every_lane` scans for all of the sender's lists."""
        lists = list(self.r.scan_iter(f"{self.tag}:q:*")) if every_lane else [f"{self.tag}:q:{LANE}"]
        ready = sum(self.r.llen(k) for k in lists)
        return {"ready": ready, "lease": self.r.zcard(f"{self.tag}:lease"), "delay": self.r.zcard(f"{self.tag}:delay")}

    def records(self):
        """(status, created ms, submitted ms or None) of every message record of the sender."""
        out = []
        keys = list(self.r.scan_iter(f"{self.tag}:m:*", count=2000))
        for i in range(0, len(keys), 2000):
            pipe = self.r.pipeline(transaction=False)
            for k in keys[i:i + 2000]:
                pipe.hmget(k, "status", "created", "history")
            for status, created, history in pipe.execute():
                submitted = None
                for h in json.loads(f"[{history or ''}]"):
                    if h.get("status") == "submitted":
                        submitted = h["at"]
                out.append((status, int(created or 0), submitted))
        return out

    def command_stats(self):
        stats = self.r.info("commandstats")
        return {k.removeprefix("cmdstat_"): {"calls": v["calls"], "usec": v["usec"]} for k, v in stats.items()}

    def used_memory(self):
        return self.r.info("memory")["used_memory"]


class Service:
    """A server process started for one run: started, waited for on its health URL, stopped with
    SIGTERM (then SIGKILL) at the end; its pid file lets bench.sh stop it if the runner dies."""

    name, pid_file, health = "", "", ""

    def start(self, cmd, env, log_name):
        a = self.args
        logf = open(a.tmp / log_name, "a")
        self.proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        (a.tmp / self.pid_file).write_text(str(self.proc.pid))
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see {a.tmp}/{log_name}")
            try:
                if http("GET", self.base + self.health, timeout=1)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after 20 s")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        (self.args.tmp / self.pid_file).unlink(missing_ok=True)

    @property
    def pid(self):
        return self.proc.pid


class Gateway(Service):
    name, pid_file, health = "gateway", "gateway.pid", "/health/ready"

    def __init__(self, args, dispatch, tag, config=None, env=None):
        self.args, self.dispatch, self.tag = args, dispatch, tag
        self.config, self.env = config or args.gateway_config, env or {}
        self.proc = None
        self.base = f"http://127.0.0.1:{args.gateway_port}"

    def __enter__(self):
        a = self.args
        env = dict(os.environ, RUST_LOG="warn", GATEWAY__SERVER__LISTEN=f"127.0.0.1:{a.gateway_port}",
                   GATEWAY__REDIS__URL=f"redis://127.0.0.1:{a.redis_port}",
                   GATEWAY__ENGINE__DISPATCH="true" if self.dispatch else "false", **self.env)
        (a.tmp / f"gateway-{self.tag}.log").unlink(missing_ok=True)
        return self.start([str(a.bin_dir / "gateway"), "--config", str(self.config)], env,
                          f"gateway-{self.tag}.log")

    def metrics(self):
        return http("GET", self.base + "/metrics")[1].decode()

    def accepted(self):
        return metric_sum(self.metrics(), "gateway_messages_accepted_total")


class Sandbox:
    """The provider sandbox, started afresh for each run that uses it: it keeps every message it
    accepted (for status polls), and a map grown by earlier runs would make later runs unequal."""

    def __init__(self, args):
        self.args = args
        self.proc = None

    def restart(self):
        self.stop()
        a = self.args
        logf = open(a.tmp / "sandbox.log", "a")
        self.proc = subprocess.Popen([str(a.bin_dir / "provider-sandbox"), "--listen", f"127.0.0.1:{a.sandbox_port}",
                                      "--workers", "2"], env=dict(os.environ, RUST_LOG="warn"),
                                     stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        (a.tmp / "sandbox.pid").write_text(str(self.proc.pid))
        for _ in range(100):
            if self.proc.poll() is not None:
                raise RuntimeError(f"provider-sandbox exited ({self.proc.returncode}); see {a.tmp}/sandbox.log")
            try:
                if http("GET", f"http://127.0.0.1:{a.sandbox_port}/_sandbox/health", timeout=1)[0] == 200:
                    return self.proc.pid
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("provider-sandbox not ready after 10 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        (self.args.tmp / "sandbox.pid").unlink(missing_ok=True)


class Peer(Service):
    """P1: bench/peer/server.js (Node + BullMQ), started afresh on an emptied Redis for each run."""

    name, pid_file, health = "the Node peer", "peer.pid", "/health"
    QUEUE = "bull:sends"

    def __init__(self, args):
        self.args = args
        self.proc = None
        self.base = f"http://127.0.0.1:{args.peer_port}"

    def __enter__(self):
        a = self.args
        env = dict(os.environ, PEER_PORT=str(a.peer_port), PEER_REDIS_PORT=str(a.redis_port),
                   PEER_SANDBOX_URL=f"http://127.0.0.1:{a.sandbox_port}", PEER_CERTIFICATION_CODE=INCS_CODE,
                   NODE_ENV="production")
        return self.start(["node", str(a.peer_dir / "server.js")], env, "peer.log")

    def stats(self):
        return json.loads(http("GET", self.base + "/stats")[1])

    def left(self, store):
        q = self.QUEUE
        return {"ready": store.r.llen(f"{q}:wait") + store.r.zcard(f"{q}:prioritized"),
                "lease": store.r.llen(f"{q}:active"), "delay": store.r.zcard(f"{q}:delayed")}

    def jobs_added(self, store):
        return int(store.r.get(f"{self.QUEUE}:id") or 0)


# ---------------------------------------------------------------------------------------------
# Runs

class Bench:
    def __init__(self, args):
        self.a = args
        self.store = Store(args.redis_port)
        self.sandbox = f"http://127.0.0.1:{args.sandbox_port}"
        self.echo = f"http://127.0.0.1:{args.echo_port}"
        self.services = {"redis": args.redis_pid, "sandbox": None, "echo": args.echo_pid, "runner": os.getpid()}
        self.sandbox_proc = Sandbox(args)

    def fresh_sandbox(self):
        self.services["sandbox"] = self.sandbox_proc.restart()

    def close(self):
        self.sandbox_proc.stop()

    def gw_url(self):
        return f"http://127.0.0.1:{self.a.gateway_port}/v1/messages"

    def gw_headers(self):
        return [f"Authorization: Bearer {API_KEY}"]

    def quiet(self, pids):
        return wait_quiet(pids, self.a.quiet_wait, self.a.quiet_threshold)

    def clear_sandbox(self):
        http("DELETE", self.sandbox + "/_sandbox/requests")

    def sandbox_count(self):
        return len(json.loads(http("GET", self.sandbox + "/_sandbox/requests?provider=incs", timeout=120)[1]))

    def wait_drained(self, limit_s):
        """Polls until nothing is ready, leased or delayed; returns (drained, Redis time ms)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if not any(self.store.leftovers().values()):
                return True, self.store.now_ms()
            time.sleep(0.05)
        return False, self.store.now_ms()

    def http_only(self, s, rnd):
        """S0 and S1: wrk against bench-echo or the sandbox."""
        if s == "S0":
            url, body, headers = self.echo + "/echo", GATEWAY_BODY, []
        else:
            url, body, headers = (self.sandbox + "/external/messages/whatsapp", INCS_BODY,
                                  [f"certification-code: {INCS_CODE}"])
            self.fresh_sandbox()
        pids = dict(self.services)
        quiet = self.quiet(pids)
        wrk(self.a, url, body, headers, 1)  # warm-up: connections, allocator, caches
        cpu = CpuWindow(pids)
        w = wrk(self.a, url, body, headers, self.a.duration)
        win = cpu.close(w["cpu_s"])
        if s == "S1":
            self.clear_sandbox()
        return {"scenario": s, "round": rnd, "rate": w["rate"], "wrk": w, "cpu": win, "quiet_before": quiet,
                "messages": w["ok"], "server": "echo" if s == "S0" else "sandbox"}

    def accept_only(self, rnd):
        """S2: dispatch paused; the rate of 202s."""
        self.store.reset("everysec")
        with Gateway(self.a, dispatch=False, tag="S2") as gw:
            pids = dict(self.services, gateway=gw.pid)
            wrk(self.a, self.gw_url(), GATEWAY_BODY, self.gw_headers(), 2)
            time.sleep(0.5)  # requests the warm-up left in flight finish before the slate is wiped
            self.store.flush()
            quiet = self.quiet(pids)
            acc0 = gw.accepted()
            cpu = CpuWindow(pids)
            w = wrk(self.a, self.gw_url(), GATEWAY_BODY, self.gw_headers(), self.a.duration)
            win = cpu.close(w["cpu_s"])
            time.sleep(0.5)
            cmds = self.store.command_stats()
            accepted = gw.accepted() - acc0
            left = self.store.leftovers(every_lane=True)
        # A request cut off by wrk's stop may be stored (and later sent) without its 202 reaching the
        # client, or being counted: records >= 202s received, and >= the accepted counter.
        checks = {"accepted": accepted, "wrk_2xx": w["ok"], "queued": left["ready"],
                  "ok": w["status_errors"] == 0 and w["socket_errors"] == 0 and left["ready"] >= max(accepted, w["ok"])
                  and left["ready"] - w["ok"] <= self.a.connections}
        return {"scenario": "S2", "round": rnd, "rate": w["rate"], "wrk": w, "cpu": win, "quiet_before": quiet,
                "messages": accepted, "checks": checks, "redis_commands": cmds}

    def pipeline_run(self, tag, rnd, fsync, load):
        """S3, S4 and the latency runs: load, then wait until every accepted message is submitted."""
        self.store.reset(fsync)
        self.fresh_sandbox()
        with Gateway(self.a, dispatch=True, tag=tag) as gw:
            pids = dict(self.services, gateway=gw.pid)
            load(2, warmup=True)
            time.sleep(0.5)
            self.wait_drained(60)
            self.clear_sandbox()
            self.store.flush()
            quiet = self.quiet(pids)
            m0 = gw.metrics()
            acc0 = metric_sum(m0, "gateway_messages_accepted_total")
            t0 = self.store.now_ms()
            cpu = CpuWindow(pids)
            result = load(self.a.duration, warmup=False)
            t_load_end = self.store.now_ms()
            drained, t_drained = self.wait_drained(self.a.drain_limit)
            win = cpu.close(result["cpu_s"])
            cmds = self.store.command_stats()
            time.sleep(0.2)
            m1 = gw.metrics()
            accepted = metric_sum(m1, "gateway_messages_accepted_total") - acc0
            server = {}
            for key, name, filt in (("accept", "gateway_http_request_duration_seconds", ['route="/v1/messages"', 'method="POST"']),
                                    ("a2s", "gateway_accept_to_submitted_seconds", [])):
                h0, h1 = histogram(m0, name, filt), histogram(m1, name, filt)
                server[key] = {"p50_le_ms": bucket_quantile(h0, h1, 0.5), "p99_le_ms": bucket_quantile(h0, h1, 0.99)}
            left = self.store.leftovers(every_lane=True)
            recs = self.store.records()
            received = self.sandbox_count()
            self.clear_sandbox()
        submitted = [r for r in recs if r[2] is not None]
        statuses = {}
        for st, _, _ in recs:
            statuses[st] = statuses.get(st, 0) + 1
        last = max((r[2] for r in submitted), default=t0)
        span_s = max(1e-3, (last - t0) / 1000)
        a2s = sorted(r[2] - r[1] for r in submitted)
        client_2xx = result["ok"] if "ok" in result else result["statuses"].get("202", 0)
        checks = {
            "accepted": int(accepted), "client_2xx": client_2xx, "records": len(recs), "submitted": len(submitted),
            "statuses": statuses, "sandbox_received": received, "left": left, "drained": drained,
            "backlog_at_load_end_s": (t_drained - t_load_end) / 1000,
        }
        # Every stored message (each 202 the client got, and any request cut off after it was stored)
        # reached `submitted`, and the provider got each exactly once.
        checks["ok"] = (drained and not any(left.values()) and len(submitted) == len(recs)
                        and received == len(recs) and len(recs) >= max(accepted, client_2xx))
        return {"scenario": tag, "round": rnd, "rate": len(submitted) / span_s, "span_s": span_s, "cpu": win,
                "quiet_before": quiet, "messages": len(submitted), "checks": checks, "redis_commands": cmds,
                "a2s_ms": a2s, "load": result, "server_histograms": server}

    def full(self, s, rnd):
        def load(duration, warmup):
            return wrk(self.a, self.gw_url(), GATEWAY_BODY, self.gw_headers(), duration)
        r = self.pipeline_run(s, rnd, "always" if s == "S4" else "everysec", load)
        r["wrk"] = r.pop("load")
        r["accept_rate"] = r["wrk"]["rate"]
        return r

    def peer(self, rnd):
        """P1: the Node + BullMQ peer under the same wrk load, counted like S3 (to the last completion)."""
        self.store.reset("everysec")
        self.fresh_sandbox()
        with Peer(self.a) as p:
            pids = dict(self.services, peer=p.pid)
            url = p.base + "/v1/messages"

            def drained_by(limit_s):
                deadline = time.monotonic() + limit_s
                while time.monotonic() < deadline:
                    if not any(p.left(self.store).values()):
                        return True, self.store.now_ms()
                    time.sleep(0.05)
                return False, self.store.now_ms()
            wrk(self.a, url, GATEWAY_BODY, [], 2)
            time.sleep(0.5)
            drained_by(60)
            self.clear_sandbox()
            self.store.r.config_resetstat()
            quiet = self.quiet(pids)
            s0, added0 = p.stats(), p.jobs_added(self.store)
            t0 = self.store.now_ms()
            cpu = CpuWindow(pids)
            w = wrk(self.a, url, GATEWAY_BODY, [], self.a.duration)
            t_load_end = self.store.now_ms()
            drained, t_drained = drained_by(self.a.drain_limit)
            win = cpu.close(w["cpu_s"])
            cmds = self.store.command_stats()
            time.sleep(0.2)
            s1, added = p.stats(), p.jobs_added(self.store) - added0
            left = p.left(self.store)
            received = self.sandbox_count()
            self.clear_sandbox()
        completed = s1["completed"] - s0["completed"]
        span_s = max(1e-3, (s1["last_completed_ms"] - t0) / 1000)
        checks = {"accepted": w["ok"], "client_2xx": w["ok"], "records": added, "submitted": completed,
                  "failed": s1["failed"] - s0["failed"], "sandbox_received": received, "left": left,
                  "drained": drained, "backlog_at_load_end_s": (t_drained - t_load_end) / 1000}
        checks["ok"] = (drained and not any(left.values()) and completed == added and received >= completed
                        and added >= w["ok"])
        return {"scenario": "P1", "round": rnd, "rate": completed / span_s, "span_s": span_s, "cpu": win,
                "quiet_before": quiet, "messages": completed, "checks": checks, "redis_commands": cmds, "wrk": w,
                "accept_rate": w["rate"]}

    def latency(self, rnd, rate):
        lat_file = self.a.tmp / f"latency-{rnd}.txt"

        def load(duration, warmup):
            extra = ["--rate", f"{rate:.1f}", "--duration", str(duration)]
            if not warmup:
                extra += ["--latencies-out", str(lat_file)]
            return bench_load(self.a, self.gw_url(), GATEWAY_BODY, self.gw_headers(), extra)
        r = self.pipeline_run("L", rnd, "everysec", load)
        samples = [line.split() for line in lat_file.read_text().splitlines() if line.strip()]
        accept = sorted(int(us) / 1000 for us, st in samples if st == "202")
        r["accept_ms"] = accept
        r["non_202"] = sum(1 for _, st in samples if st != "202")
        r["target_rate"] = rate
        r["checks"]["ok"] = r["checks"]["ok"] and r["non_202"] == 0
        return r

    def memory(self):
        n = self.a.memory_n
        self.store.reset("everysec")
        with Gateway(self.a, dispatch=False, tag="M") as gw:
            bench_load(self.a, self.gw_url(), GATEWAY_BODY, self.gw_headers(), ["--count", "1", "--concurrency", "1"])
            before = self.store.used_memory()
            keys0 = self.store.r.dbsize()
            cpu = CpuWindow(dict(self.services, gateway=gw.pid))
            r = bench_load(self.a, self.gw_url(), GATEWAY_BODY, self.gw_headers(),
                           ["--count", str(n), "--concurrency", "32"])
            win = cpu.close(r["cpu_s"])
            time.sleep(1.5)  # lets Redis finish rehashing its key table (both tables count while it runs)
            after = self.store.used_memory()
            left = self.store.leftovers()
            sample_key = next(self.store.r.scan_iter(f"{self.store.tag}:m:*"))
            msg_id = sample_key.rsplit(":", 1)[1]
            breakdown = {
                "message_hash": self.store.r.memory_usage(sample_key, samples=0),
                "index_key": self.store.r.memory_usage(f"{PREFIX}:ix:{msg_id}", samples=0),
                "body_field_bytes": self.store.r.hstrlen(sample_key, "body"),
                "history_field_bytes": self.store.r.hstrlen(sample_key, "history"),
                "ready_list_total": self.store.r.memory_usage(f"{self.store.tag}:q:{LANE}", samples=0),
            }
            keys1 = self.store.r.dbsize()
        return {"n": n, "before": before, "after": after, "per_msg": (after - before) / n, "queued": left["ready"],
                "keys_per_msg": (keys1 - keys0) / n, "breakdown": breakdown, "statuses": r["statuses"],
                "rate": r["achieved_rate"], "cpu": win,
                "ok": left["ready"] == n + 1 and r["statuses"].get("202", 0) == n}

    def idle(self):
        """Idle cost with `idle_accounts` configured accounts (one sender each) and nothing queued: Redis
        commands per second (every command, those run inside scripts included, from `INFO
        commandstats`), Redis and gateway CPU, over a window after a warm-up; once with the lanes
        polling every `idle_poll_ms` (wake-ups ignored: `idle_max_ms = idle_poll_ms`), once as
        configured by default (wake-ups, idle lanes looking again after `idle_max_ms`)."""
        a, n = self.a, self.a.idle_accounts
        base = Path(a.gateway_config).read_text()
        head, rest = base.split("[[accounts]]", 1)
        account = "[[accounts]]" + rest.split("[[senders]]", 1)[0]
        parts = [head]
        for i in range(n):
            parts.append(account.replace('name = "incs-whatsapp"', f'name = "idle-{i:04d}"'))
            parts.append(f'[[senders]]\nname = "idle-s{i:04d}"\nchannel = "whatsapp"\n'
                         f'{"default = true" if i == 0 else ""}\naccounts = ["idle-{i:04d}"]\n\n')
        config = a.tmp / "gateway-idle.toml"
        config.write_text("".join(parts))
        out = {"accounts": n, "runs": []}
        for label, env, warmup, window in (
                ("polling every idle_poll_ms (200 ms)", {"GATEWAY__ENGINE__IDLE_MAX_MS": "200"}, 10, 10),
                ("wake-ups (defaults: idle_poll_ms 200, idle_max_ms 300000)", {}, a.idle_warmup, a.idle_window)):
            self.store.flush()
            with Gateway(a, dispatch=True, tag="idle", config=config, env=env) as gw:
                time.sleep(warmup)
                s0 = self.store.command_stats()
                cpu = CpuWindow({"gateway": gw.pid, "redis": a.redis_pid})
                time.sleep(window)
                win = cpu.close()
                s1 = self.store.command_stats()
            calls = {k: v["calls"] - s0.get(k, {"calls": 0})["calls"] for k, v in s1.items()
                     if k not in ("info", "config|resetstat")}
            calls = {k: c for k, c in calls.items() if c > 0}
            el = win["elapsed_s"]
            r = {"label": label, "warmup_s": warmup, "window_s": el,
                 "commands_per_s": sum(calls.values()) / el,
                 "top": sorted(((k, c / el) for k, c in calls.items()), key=lambda kv: -kv[1])[:8],
                 "gateway_cores": win["cpu_s"]["gateway"] / el, "redis_cores": win["cpu_s"]["redis"] / el,
                 "other_cores": win["other_cores"]}
            out["runs"].append(r)
            log(f"idle, {n} accounts, {label}: {r['commands_per_s']:,.0f} Redis commands/s, gateway "
                f"{100 * r['gateway_cores']:.1f} % of a core, Redis {100 * r['redis_cores']:.1f} %")
        self.store.flush()
        return out

    def claim_cost(self):
        """Cost of the engine's claim (bench-claim: 5 rounds of `--claims` claims of up to 16 messages each,
        one after another, nothing sent) with 1,000 messages queued, with 1,000,000, and with 1,000,000
        queued plus 100,000 delayed (scheduled an hour ahead). The records are copies of one the API stored, written
        with pipelined HSET/LPUSH/ZADD (no AOF meanwhile); Redis's own time per claim is the EVALSHA time
        from `INFO commandstats` around the claims."""
        a = self.a
        r = self.store.r
        self.store.flush()
        with Gateway(a, dispatch=False, tag="claim"):
            st, body = http("POST", f"http://127.0.0.1:{a.gateway_port}/v1/messages", timeout=10,
                            body=GATEWAY_BODY.encode(), headers={"Authorization": f"Bearer {API_KEY}",
                                                                 "Content-Type": "application/json"})
        if st != 202:
            raise RuntimeError(f"claim cost: the template message was refused ({st})")
        template = r.hgetall(next(r.scan_iter(f"{self.store.tag}:m:*")))
        ready, delay = f"{self.store.tag}:q:{LANE}", f"{self.store.tag}:delay"
        r.config_set("appendonly", "no")

        def fill(start, count, delayed):
            due = self.store.now_ms() + 3_600_000
            for lo in range(start, start + count, 5000):
                ids = [f"bench{i:010d}" for i in range(lo, min(start + count, lo + 5000))]
                pipe = r.pipeline(transaction=False)
                for i in ids:
                    pipe.hset(f"{self.store.tag}:m:{i}", mapping=template)
                if delayed:
                    pipe.zadd(delay, {i: due for i in ids})
                else:
                    pipe.lpush(ready, *ids)
                pipe.execute()

        out = {"claims": a.claims, "rounds": 5, "max": 16, "runs": []}
        try:
            self.store.flush()
            plan = (("1,000 queued", 1000, 0), ("1,000,000 queued", 1_000_000, 0),
                    ("1,000,000 queued + 100,000 delayed", 1_000_000, 100_000))
            made = 0
            for label, queued, delayed in plan:
                t0 = time.monotonic()
                lat, got, usec, calls, commands = [], 0, 0, 0, 0
                if queued > r.llen(ready) + 10_000:
                    self.store.flush()
                for _ in range(out["rounds"]):
                    # The earlier rounds' leases would expire meanwhile and be taken back by a claim.
                    r.delete(f"{self.store.tag}:lease")
                    # Topped up to the state's depth (the claims of the round before took some).
                    top_up = queued - r.llen(ready)
                    fill(made, top_up, False)
                    made += top_up
                    top_up = delayed - r.zcard(delay)
                    fill(made, top_up, True)
                    made += top_up
                    # Lets Redis finish rehashing its key table after a large fill.
                    time.sleep(2)
                    res = json.loads(subprocess.run(
                        [str(a.bin_dir / "bench-claim"), "--config", str(a.gateway_config), "--sender", SENDER,
                         "--lane", LANE, "--claims", str(a.claims), "--max", "16"],
                        env=dict(os.environ, GATEWAY__REDIS__URL=f"redis://127.0.0.1:{a.redis_port}"),
                        capture_output=True, text=True, check=True).stdout)
                    lat += res["latency_us"]
                    got += sum(res["claimed"])
                    usec += res["evalsha"]["usec"]
                    calls += res["evalsha"]["calls"]
                    commands += res["commands"]
                lat.sort()
                run = {"label": label, "ready": queued, "delayed": r.zcard(delay), "s": time.monotonic() - t0,
                       "claimed": got, "redis_us_per_claim": usec / max(1, calls),
                       "redis_us_per_msg": usec / max(1, got), "commands_per_claim": commands / max(1, calls),
                       "p50_us": pct(lat, 50), "p99_us": pct(lat, 99)}
                out["runs"].append(run)
                log(f"claim cost, {label}: {run['redis_us_per_claim']:.0f} µs of Redis per claim "
                    f"({run['redis_us_per_msg']:.1f} per message), latency p50 {run['p50_us']:.0f} µs")
        finally:
            self.store.flush()
            r.config_set("appendonly", "yes")
        return out

    def urgency(self):
        """Memory per queued message with the search and campaign indexes, and search latency, with
        100,000 messages stored."""
        import concurrent.futures
        import random
        import urllib.parse
        n, per_batch, recipients = self.a.urgency_n, 1000, 10_000
        self.store.reset("everysec")
        headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        with Gateway(self.a, dispatch=False, tag="U") as gw:
            def post_batch(b):
                msgs = [{"channel": "whatsapp", "to": f"85268{(b * per_batch + i) % recipients:06d}", "type": "text",
                         "text": f"Campaign {b} message {i}", "priority": ("high", "normal", "bulk")[i % 3],
                         "ttl_seconds": 86400} for i in range(per_batch)]
                req = urllib.request.Request(gw.base + "/v1/messages/batch", method="POST", headers=headers,
                                             data=json.dumps({"messages": msgs}).encode())
                with urllib.request.urlopen(req, timeout=120) as r:
                    body = json.loads(r.read())
                return body["batch_id"], body["accepted"]
            post_batch(0)  # warm up: scripts loaded, connections open
            time.sleep(1.0)
            before, keys0 = self.store.used_memory(), self.store.r.dbsize()
            t0 = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                done = list(pool.map(post_batch, range(1, n // per_batch + 1)))
            store_s = time.monotonic() - t0
            time.sleep(1.5)  # lets Redis finish rehashing its key table
            after, keys1 = self.store.used_memory(), self.store.r.dbsize()
            stored = sum(acc for _, acc in done)
            batches = [b for b, _ in done]
            rng = random.Random(12)
            queries = {
                "to": lambda: {"to": f"85268{rng.randrange(recipients):06d}"},
                "batch_id": lambda: {"batch_id": rng.choice(batches), "limit": "200"},
                "status": lambda: {"status": "queued", "limit": "50"},
                "sender+since": lambda: {"sender": SENDER, "since": "2020-01-01T00:00:00Z", "limit": "100"},
                "to+status": lambda: {"to": f"85268{rng.randrange(recipients):06d}", "status": "queued"},
            }
            lat = {}
            for kind, make in queries.items():
                ms, found = [], 0
                for _ in range(self.a.search_queries):
                    url = gw.base + "/v1/messages?" + urllib.parse.urlencode(make())
                    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {API_KEY}"})
                    t = time.perf_counter()
                    with urllib.request.urlopen(req, timeout=30) as r:
                        body = json.loads(r.read())
                    ms.append((time.perf_counter() - t) * 1000)
                    found += len(body["items"])
                ms.sort()
                lat[kind] = {"p50": pct(ms, 50), "p99": pct(ms, 99), "max": ms[-1], "n": len(ms),
                             "items_per_query": found / len(ms)}
        return {"n": stored, "store_s": store_s, "before": before, "after": after,
                "per_msg": (after - before) / max(stored, 1), "keys_per_msg": (keys1 - keys0) / max(stored, 1),
                "recipients": recipients, "batches": len(batches), "latency": lat,
                "ok": stored == n // per_batch * per_batch}

    def profile(self):
        """CPU profiles of the gateway (call graph) and Redis (flat) during one more S3 run, not
        counted in the results: where each one's time goes, by code path."""
        out = {}
        self.store.reset("everysec")
        self.fresh_sandbox()
        with Gateway(self.a, dispatch=True, tag="P") as gw:
            wrk(self.a, self.gw_url(), GATEWAY_BODY, self.gw_headers(), 1)
            self.wait_drained(60)
            procs = []
            for name, pid, extra in (("gateway", gw.pid, ["-F", "199", "--call-graph", "dwarf,16384"]),
                                     ("redis", self.a.redis_pid, ["-F", "499"])):
                data = self.a.tmp / f"perf-{name}.data"
                procs.append((name, data, subprocess.Popen(
                    ["perf", "record", "-q", "-e", "cpu-clock", *extra, "-p", str(pid), "-o", str(data),
                     "--", "sleep", str(self.a.duration)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
            wrk(self.a, self.gw_url(), GATEWAY_BODY, self.gw_headers(), self.a.duration)
            for _, _, p in procs:
                p.wait(timeout=120)
            self.wait_drained(self.a.drain_limit)
            self.clear_sandbox()

        def report(data, *args):
            r = subprocess.run(["perf", "report", "-i", str(data), "--stdio", *args], capture_output=True, text=True,
                               timeout=900)
            return [l.rstrip() for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]

        for name, data, _ in procs:
            dsos = report(data, "--no-children", "--sort", "dso", "-g", "none", "--percent-limit", "2")[:8]
            if name == "gateway":
                # Inclusive time of the code paths that matter, from the call graphs.
                keep = re.compile(r"do_syscall_64|gateway_\w+::|redis::aio::multiplexed_connection::PipelineSink"
                                  r"|redis::parser|deadpool_redis::Manager|actix_http::h1::dispatcher::Dispatcher<"
                                  r"|hyper::proto::h1::dispatch::Dispatcher<|serde_json::de::from|prometheus::"
                                  r"|epoll_wait|tcp_sendmsg$|tcp_recvmsg$")
                seen, lines = set(), []
                for l in report(data, "--children", "--sort", "sym", "-g", "none", "--percent-limit", "1"):
                    sym = l.split("] ", 1)[-1]
                    if keep.search(sym) and sym not in seen and "(inlined)" not in sym:
                        seen.add(sym)
                        lines.append(l[:160])
                out[name] = {"dsos": dsos, "symbols": lines[:28], "mode": "call graph, inclusive (children) %"}
                if self.a.only == "pipeline":
                    out["gateway self"] = {"dsos": [], "mode": "flat (self) %", "symbols": [
                        l[:160] for l in report(data, "--no-children", "--sort", "sym", "-g", "none",
                                                "--percent-limit", "0.6")[:45]]}
            else:
                out[name] = {"dsos": dsos,
                             "symbols": report(data, "--no-children", "--sort", "sym", "--percent-limit", "1.5")[:20],
                             "mode": "flat (self) %"}
        return out


def perf_works():
    try:
        r = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"],
                           capture_output=True, timeout=20)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# ---------------------------------------------------------------------------------------------
# Report

def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = max(1, min(len(sorted_values), int(-(-p / 100 * len(sorted_values) // 1))))
    return sorted_values[k - 1]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def machine_facts(a):
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {
        "nproc": int(sh("nproc") or NCPU), "cpu_model": model, "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": sh("uname -sr"), "redis": sh("redis-server --version"), "wrk": sh("wrk -v 2>&1 | head -1"),
        "rustc": sh("rustc --version"), "commit": sh("git rev-parse --short HEAD"),
        "dirty": bool(sh("git status --porcelain --untracked-files=no")),
        "loadavg_start": loadavg(),
    }


def write_urgency_report(a, facts, u, started):
    worst = max(v["p99"] for v in u["latency"].values())
    L = [f"# make bench: urgency and search, {started:%Y-%m-%d %H:%M}", "",
         f"Machine: {facts['nproc']} CPUs ({facts['cpu_model']}), load average at start {facts['loadavg_start']}. "
         "Release build; one gateway (dispatch paused, so every message stays queued), one Redis with AOF.", "",
         "| target | measured | wanted | met |", "| --- | ---: | --- | --- |",
         f"| search p99 with {u['n']:,} stored (worst query kind) | {worst:.1f} ms | < 20 ms | {'yes' if worst < 20 else 'NO'} |",
         f"| Redis memory per queued message, with the new indexes | {u['per_msg']:.0f} B | <= 2048 B | "
         f"{'yes' if u['per_msg'] <= 2048 else 'NO'} |", "",
         "## Stored", "",
         f"{u['n']:,} text messages through `POST /v1/messages/batch` ({u['batches']} campaigns of 1,000, "
         f"{u['recipients']:,} recipients, priorities high/normal/bulk in turn, `ttl_seconds` 86400) in "
         f"{u['store_s']:.1f} s. `used_memory` {u['before']:,} -> {u['after']:,} B: **{u['per_msg']:.0f} B per "
         f"message**, {u['keys_per_msg']:.2f} keys per message (record, id index, and the recipient indexes). "
         "Each message is in its recipient's index, its status index, its campaign's member set and the "
         "validity set (a search by sender alone merges the status indexes).", "",
         "## Search latency", "",
         "Client-side, over HTTP, one query at a time (`GET /v1/messages`, each answer with its full message "
         "resources):", "",
         "| query | n | p50 ms | p99 ms | max ms | items per answer |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for kind, v in u["latency"].items():
        L.append(f"| `{kind}` | {v['n']} | {v['p50']:.1f} | {v['p99']:.1f} | {v['max']:.1f} | {v['items_per_query']:.0f} |")
    L += ["", "## Command", "", "```sh", f"BENCH_ONLY=urgency BENCH_URGENCY_N={u['n']} make bench", "```"]
    path = a.out / f"{a.stem}-urgency.md"
    path.write_text("\n".join(L) + "\n")
    return path


def idle_claim_targets(idle, claim):
    """Target rows for the idle and claim-cost figures (none for a figure that was not measured)."""
    out = []
    if idle and idle["runs"]:
        r = idle["runs"][-1]
        out.append((f"Idle Redis commands/s with {idle['accounts']:,} accounts (wake-ups, defaults)",
                    f"{r['commands_per_s']:,.0f}", "< 100", r["commands_per_s"] < TARGETS["idle_cmds"]))
    if claim and len(claim["runs"]) >= 2:
        small, big = claim["runs"][0], claim["runs"][1]
        growth = big["redis_us_per_claim"] / small["redis_us_per_claim"] - 1
        out.append(("Claim cost (Redis µs per claim) at 1,000,000 queued vs 1,000",
                    f"{growth:+.0%}", "within 20 %", abs(growth) <= TARGETS["claim_growth"]))
    return out


def idle_claim_lines(idle, claim):
    """The report's sections on idle cost and claim cost."""
    L = []
    w = L.append
    if idle:
        w(f"## Idle cost with {idle['accounts']:,} accounts")
        w("")
        w(f"A gateway with {idle['accounts']:,} INCS accounts (one sender each), nothing queued, no event "
          "subscriptions. Commands/s counts every Redis command, including those run inside the engine's scripts "
          "(`INFO commandstats` delta over the window); CPU from `/proc/<pid>/stat`. The first row makes every "
          "idle lane look for work every `idle_poll_ms` as before wake-ups (`GATEWAY__ENGINE__IDLE_MAX_MS=200`); "
          "the second is the default: idle lanes wait for a wake-up, looking again after at most `idle_max_ms`.")
        w("")
        w("| lanes | warm-up | window | Redis commands/s | gateway CPU | Redis CPU | other cores | top commands /s |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for r in idle["runs"]:
            top = ", ".join(f"{k} {v:,.0f}" for k, v in r["top"][:6])
            w(f"| {r['label']} | {r['warmup_s']} s | {r['window_s']:.0f} s | {r['commands_per_s']:,.0f} | "
              f"{100 * r['gateway_cores']:.1f} % | {100 * r['redis_cores']:.1f} % | {r['other_cores']:.2f} | {top} |")
        w("")
    if claim:
        w("## Claim cost with a deep queue")
        w("")
        w(f"`bench-claim` runs the engine's claim {claim['claims']} times for up to {claim['max']} messages "
          f"each, one after another, in {claim.get('rounds', 1)} rounds per state, on the bench lane of a Redis "
          "filled with copies of a record the API stored (pipelined writes, AOF off while filling; the ready list "
          "topped up to the state's depth before each round, then 2 s for Redis to finish rehashing). Redis µs: "
          "the EVALSHA time inside Redis (`INFO commandstats` around each round); latency: each claim's round "
          "trip seen by the client. The claimed messages stay leased: nothing is sent.")
        w("")
        w("| state | ready | delayed | claimed | Redis µs per claim | Redis µs per message | commands per claim | latency p50 | p99 |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in claim["runs"]:
            w(f"| {r['label']} | {r['ready']:,} | {r['delayed']:,} | {r['claimed']:,} | {r['redis_us_per_claim']:.0f} | "
              f"{r['redis_us_per_msg']:.1f} | {r['commands_per_claim']:.1f} | {r['p50_us']:.0f} µs | {r['p99_us']:.0f} µs |")
        w("")
    return L


def write_idle_claim_report(a, facts, idle, claim, started):
    path = a.out / f"{a.stem}-idle-claim.md"
    L = [f"# `make bench` idle and claim cost: {started:%Y-%m-%d %H:%M}", "",
         f"Commit `{facts['commit']}`{' (with uncommitted changes)' if facts['dirty'] else ''}, release build. "
         f"Machine: {facts['nproc']} CPUs ({facts['cpu_model']}); load average at start {facts['loadavg_start']}.", ""]
    L += idle_claim_lines(idle, claim)
    L += ["| target | measured | wanted | |", "| --- | ---: | ---: | --- |"]
    for name, val, want, ok in idle_claim_targets(idle, claim):
        L.append(f"| {name} | {val} | {want} | {'met' if ok else '**missed**'} |")
    L += ["", "## Command", "", "```sh", "BENCH_ONLY=idle-claim make bench", "```"]
    path.write_text("\n".join(L) + "\n")
    return path


def write_report(a, facts, runs, lat, mem, prof, started, finished, idle=None, claim=None):
    by = {s: [r for r in runs if r["scenario"] == s] for s in SCENARIOS}
    rates = {s: [r["rate"] for r in by[s]] for s in SCENARIOS}
    m = {s: med(rates[s]) for s in SCENARIOS}
    ratios = {"S2/S0": m["S2"] / m["S0"], "S3/S0": m["S3"] / m["S0"], "S3/S1": m["S3"] / m["S1"],
              "S4/S3": m["S4"] / m["S3"], "S3/P1": m["S3"] / m["P1"] if by["P1"] else float("nan")}
    acc_p50 = [pct(r["accept_ms"], 50) for r in lat]
    acc_p99 = [pct(r["accept_ms"], 99) for r in lat]
    a2s_p50 = [pct(r["a2s_ms"], 50) for r in lat]
    a2s_p99 = [pct(r["a2s_ms"], 99) for r in lat]
    targets = [
        ("S3/P1 (full pipeline vs the Node + BullMQ peer; must)", f"{ratios['S3/P1']:.2f}", ">= 3",
         ratios["S3/P1"] >= TARGETS["s3_p1"]),
        ("S3/S0 must (full pipeline vs HTTP ceiling)", f"{ratios['S3/S0']:.3f}", ">= 0.15",
         ratios["S3/S0"] >= TARGETS["s3_s0_must"]),
        ("S3/S0 (full pipeline vs HTTP ceiling; goal)", f"{ratios['S3/S0']:.3f}", ">= 0.25", ratios["S3/S0"] >= TARGETS["s3_s0"]),
        ("S2/S0 (accept vs HTTP ceiling)", f"{ratios['S2/S0']:.3f}", ">= 0.40", ratios["S2/S0"] >= TARGETS["s2_s0"]),
        ("accept p99 at 50 % of S3", f"{med(acc_p99):.2f} ms", "<= 10 ms", med(acc_p99) <= TARGETS["accept_p99_ms"]),
        ("accept-to-submitted p99 at 50 % of S3", f"{med(a2s_p99):.1f} ms", "<= 25 ms", med(a2s_p99) <= TARGETS["a2s_p99_ms"]),
        ("Redis memory per queued text message", f"{mem['per_msg']:.0f} B", "<= 2048 B", mem["per_msg"] <= TARGETS["mem_bytes"]),
    ] + idle_claim_targets(idle, claim)
    checked = [r for r in runs if "checks" in r] + lat
    all_ok = all(r["checks"]["ok"] for r in checked) and mem["ok"]

    def cpu_us(r, k):
        return 1e6 * r["cpu"]["cpu_s"].get(k, 0.0) / max(1, r["messages"])

    def redis_reads(r):
        return r["cpu"]["syscalls"].get("redis", [0, 0])[0] / max(1, r["messages"])

    L = []
    w = L.append
    w(f"# `make bench`: {started:%Y-%m-%d %H:%M}")
    w("")
    w(f"Commit `{facts['commit']}`{' (with uncommitted changes)' if facts['dirty'] else ''}, release build. "
      f"Machine: {facts['nproc']} CPUs ({facts['cpu_model']}), {facts['mem_gib']} GiB, {facts['kernel']}; "
      f"{facts['redis']}; {facts['wrk']}; {facts['rustc']}.")
    steal = med([r["cpu"]["steal_cores"] for r in runs + lat])
    w(f"Load average at start {facts['loadavg_start']}, at end {facts.get('loadavg_end', loadavg())}; "
      f"CPU stolen by the hypervisor during the runs: median {steal:.2f} cores; "
      f"the run took {(finished - started).total_seconds() / 60:.1f} min. "
      "`other cores` below is the CPU used during each measured window by processes that are not part of the "
      "benchmark (other builds on this machine): the noise.")
    w("")
    w(f"Method: every scenario is run {a.rounds} times, interleaved (S0, S1, S2, S3, S4, P1, S0, ...), each with "
      f"`wrk -t{a.threads} -c{a.connections} -d{a.duration}s` after a short warm-up. All servers run "
      "with 2 HTTP workers, log level `warn`, on 127.0.0.1, sharing this machine with the load generator. "
      "S2-S4 start a fresh gateway on an emptied Redis (AOF on, `appendfsync everysec`, RDB off); "
      "S3/S4 throughput is messages that reached `submitted` divided by the time from the start of the load "
      "to the last `submitted` (Redis clock, from the message records), not requests answered. The bench "
      "config raises the lane rate to `rate_per_second = 1000000`, `burst = 100000` and the API key's rate "
      "to 1000000/s, so no rate limit is the bottleneck; it has one INCS WhatsApp account, no event "
      "subscriptions, and the sandbox sends no status callbacks (the pipeline measured ends at `submitted`). "
      "Other engine settings are the defaults (`concurrency_per_lane = 256`, one shared Redis connection). "
      "P1 is the peer a team would write without a gateway (bench/peer/server.js: one Node process, the "
      "`http` module, a BullMQ queue and a BullMQ worker with concurrency 64 POSTing each job to the same "
      "sandbox endpoint, jobs removed on completion), in the same rotation, on the same emptied Redis and "
      "AOF setting, under the same wrk load and body; it is counted the same way: jobs completed divided by "
      "the time from the start of the load to the last completion.")
    w("")
    w("## Throughput")
    w("")
    w("| scenario | what | median /s | min-max /s | runs | other cores (median) |")
    w("| --- | --- | ---: | ---: | ---: | ---: |")
    for s in SCENARIOS:
        rs = rates[s]
        if not rs:
            continue
        other = med([r["cpu"]["other_cores"] for r in by[s]])
        w(f"| {s} | {WHAT[s]} | {m[s]:,.0f} | {min(rs):,.0f}-{max(rs):,.0f} | {len(rs)} | {other:.2f} |")
    w("")
    acc3 = [r["accept_rate"] for r in by["S3"]]
    acc4 = [r["accept_rate"] for r in by["S4"]]
    w(f"In S3 the API accepted a median {med(acc3):,.0f}/s ({min(acc3):,.0f}-{max(acc3):,.0f}) while the "
      f"workers submitted {m['S3']:,.0f}/s; S4 accepted {med(acc4):,.0f}/s. Per run (rate /s, wrk p50/p99 ms, other cores):")
    w("")
    w("| run | " + " | ".join(SCENARIOS) + " |")
    w("| --- | " + " | ".join("---" for _ in SCENARIOS) + " |")
    for i in range(a.rounds):
        cells = []
        for s in SCENARIOS:
            r = by[s][i] if i < len(by[s]) else None
            cells.append(f"{r['rate']:,.0f} ({r['wrk']['p50_us'] / 1000:.1f}/{r['wrk']['p99_us'] / 1000:.1f}; "
                         f"{r['cpu']['other_cores']:.2f})" if r else "-")
        w(f"| {i + 1} | " + " | ".join(cells) + " |")
    w("")
    w("## Ratios and targets")
    w("")
    w("| ratio | value |")
    w("| --- | ---: |")
    for k, v in ratios.items():
        w(f"| {k} | {v:.3f} |")
    w("")
    w("| target | measured | wanted | |")
    w("| --- | ---: | ---: | --- |")
    for name, val, want, ok in targets:
        w(f"| {name} | {val} | {want} | {'met' if ok else '**missed**'} |")
    w("")
    rate50 = lat[0]["target_rate"] if lat else float("nan")
    w(f"## Latency at 50 % of S3's median rate ({rate50:,.0f} messages/s, open loop, {a.duration} s per run)")
    w("")
    w("Accept: HTTP latency of `POST /v1/messages` seen by the client (`bench-load`, measured from each "
      "request's scheduled send time, so a stall is not hidden). Accept-to-submitted: every message of the "
      "run, from its record's `created` to its `submitted` history entry (Redis clock, 1 ms resolution).")
    w("")
    w("The `server` columns are the gateway's own histograms over the same run "
      "(`gateway_http_request_duration_seconds`, `gateway_accept_to_submitted_seconds`): the upper bound of the "
      "bucket holding the p99. The accept histogram excludes the client and the kernel; the "
      "accept-to-submitted one runs from the id's creation (before validation and the Redis write) to "
      "after the whole submit has been recorded (four round trips), so it reads higher than the records.")
    w("")
    w("| run | achieved /s | accept p50 | accept p99 | accept max | server p99 | to submitted p50 | p99 | max | server p99 | messages | other cores |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in lat:
        w(f"| {r['round']} | {r['load']['achieved_rate']:,.0f} | {pct(r['accept_ms'], 50):.2f} ms | "
          f"{pct(r['accept_ms'], 99):.2f} ms | {r['accept_ms'][-1] if r['accept_ms'] else float('nan'):.1f} ms | "
          f"<= {r['server_histograms']['accept']['p99_le_ms']:g} ms | "
          f"{pct(r['a2s_ms'], 50):.0f} ms | {pct(r['a2s_ms'], 99):.0f} ms | "
          f"{r['a2s_ms'][-1] if r['a2s_ms'] else float('nan'):.0f} ms | "
          f"<= {r['server_histograms']['a2s']['p99_le_ms']:g} ms | {r['messages']:,} | "
          f"{r['cpu']['other_cores']:.2f} |")
    w(f"| median | | {med(acc_p50):.2f} ms | {med(acc_p99):.2f} ms | | | {med(a2s_p50):.0f} ms | {med(a2s_p99):.0f} ms | | | | |")
    w("")
    w("## CPU per message")
    w("")
    w("From `/proc/<pid>/stat` (utime + stime) over each measured window (S3/S4: until the queue is drained), "
      "divided by the messages of the run (S0/S1: requests answered; S2: messages accepted; S3/S4/latency: "
      "messages submitted). Medians over the runs; `load gen` is wrk or bench-load. `Redis reads/msg`: "
      "read syscalls of Redis per message (`/proc/<pid>/io`), about one per client round trip (fewer when "
      "requests arrive pipelined).")
    w("")
    w("| scenario | server µs/msg | gateway µs | Redis µs | sandbox µs | load gen µs | Redis reads/msg | machine busy (cores) | other cores |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    groups = [(s, by[s]) for s in SCENARIOS] + [("latency runs", lat)]
    for name, rs in groups:
        if not rs:
            continue
        server = "-"
        if name == "S0":
            server = f"{med([cpu_us(r, 'echo') for r in rs]):.1f}"
        elif name == "P1":
            server = f"{med([cpu_us(r, 'peer') for r in rs]):.1f} (Node)"
        elif name == "S1":
            server = f"{med([cpu_us(r, 'sandbox') for r in rs]):.1f}"
        gw = med([cpu_us(r, "gateway") for r in rs]) if "gateway" in rs[0]["cpu"]["cpu_s"] else None
        w(f"| {name} | {server} | {'-' if gw is None else f'{gw:.1f}'} | {med([cpu_us(r, 'redis') for r in rs]):.1f} | "
          f"{med([cpu_us(r, 'sandbox') for r in rs]):.1f} | {med([cpu_us(r, 'loadgen') for r in rs]):.1f} | "
          f"{med([redis_reads(r) for r in rs]):.2f} | "
          f"{med([r['cpu']['machine_busy_cores'] for r in rs]):.2f} | {med([r['cpu']['other_cores'] for r in rs]):.2f} |")
    w("")
    w("## Redis memory per queued message")
    w("")
    bd = mem["breakdown"]
    w(f"Dispatch paused, {mem['n']:,} text messages enqueued through the API ({mem['rate']:,.0f}/s): "
      f"`used_memory` {mem['before']:,} -> {mem['after']:,} B, **{mem['per_msg']:.0f} B per message** "
      f"({mem['keys_per_msg']:.2f} keys per message; {mem['queued']:,} ids in the ready list). One record: "
      f"message hash {bd['message_hash']} B (`body` field {bd['body_field_bytes']} B, `history` "
      f"{bd['history_field_bytes']} B), id index key {bd['index_key']} B; the ready list holds "
      f"{bd['ready_list_total'] / max(1, mem['queued']):.0f} B per id.")
    w("")
    for line in idle_claim_lines(idle, claim):
        w(line)
    w("## Zero lost, fully drained")
    w("")
    w("Accepted = 202s the load generator received; records = messages stored in Redis (a request cut off "
      "when wrk stops can be stored without its 202 arriving: at least once). Drained after load: how long "
      "the queue took to empty once the load stopped.")
    w("")
    w("| run | accepted (202) | records | submitted | sandbox received | ready/lease/delay left | drained after load | ok |")
    w("| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |")
    for r in checked:
        c = r["checks"]
        if r["scenario"] == "S2":
            w(f"| S2 #{r['round']} | {c['wrk_2xx']:,} | {c['queued']:,} queued | (dispatch paused) | - | - | - | "
              f"{'ok' if c['ok'] else '**FAILED**'} |")
            continue
        left = c["left"]
        w(f"| {r['scenario']} #{r['round']} | {c['client_2xx']:,} | {c['records']:,} | {c['submitted']:,} | "
          f"{c['sandbox_received']:,} | {left['ready']}/{left['lease']}/{left['delay']} | "
          f"{c['backlog_at_load_end_s']:.1f} s | {'ok' if c['ok'] else '**FAILED**'} |")
    w(f"| memory | {mem['statuses'].get('202', 0):,} | | (dispatch paused) | | {mem['queued']:,} queued | | "
      f"{'ok' if mem['ok'] else '**FAILED**'} |")
    w("")
    w("Every S3, S4 and latency run: " + (
        "every accepted message reached `submitted`, the sandbox received each exactly once, and no ready, "
        "lease or delay entries were left." if all_ok else "**a check failed: see the rows marked FAILED.**"))
    w("")
    w("## Where the time goes")
    w("")
    s3 = by["S3"]
    per = {k: med([cpu_us(r, k) for r in s3]) for k in ("gateway", "redis", "sandbox", "loadgen")}
    total = sum(per.values())
    busy = med([r["cpu"]["machine_busy_cores"] for r in s3])
    other = med([r["cpu"]["other_cores"] for r in s3])
    w(f"S3 costs {total:.0f} µs of CPU per submitted message on this machine: gateway {per['gateway']:.0f}, "
      f"Redis {per['redis']:.0f}, sandbox {per['sandbox']:.0f}, wrk {per['loadgen']:.0f}. With "
      f"{facts['nproc']} cores that caps the pipeline at about {facts['nproc'] * 1e6 / total:,.0f} messages/s "
      f"if nothing else ran; the S3 runs kept {busy:.2f} of {facts['nproc']} cores busy ({other:.2f} of them "
      f"other processes). S0 costs {med([cpu_us(r, 'echo') for r in by['S0']]):.0f} µs (server) + "
      f"{med([cpu_us(r, 'loadgen') for r in by['S0']]):.0f} µs (wrk) per request, S2 "
      f"{med([cpu_us(r, 'gateway') for r in by['S2']]):.0f} µs (gateway) + "
      f"{med([cpu_us(r, 'redis') for r in by['S2']]):.0f} µs (Redis) per message.")
    w("")
    cmds = {}
    for r in s3:
        for k, v in r.get("redis_commands", {}).items():
            c = cmds.setdefault(k, [0, 0])
            c[0] += v["calls"]
            c[1] += v["usec"]
    n3 = sum(r["messages"] for r in s3) or 1
    top = sorted(cmds.items(), key=lambda kv: -kv[1][1])[:8]
    w("Redis commands during S3 (all runs; `usec` is Redis's own time inside each command):")
    w("")
    w("| command | calls per message | µs per message | µs per call |")
    w("| --- | ---: | ---: | ---: |")
    for k, (calls, usec) in top:
        w(f"| {k} | {calls / n3:.2f} | {usec / n3:.1f} | {usec / max(1, calls):.1f} |")
    w("")
    if prof:
        for name in ("gateway", "redis"):
            p = prof.get(name)
            if not p:
                continue
            binary = " (Debian's redis-server binary is named redis-check-rdb)" if name == "redis" else ""
            w(f"`perf record -e cpu-clock` of the {name} during one more S3 run (not counted above), by shared "
              f"object, then by symbol, {p['mode']}{binary}:")
            w("")
            w("```")
            w("\n".join(p["dsos"]))
            w("")
            w("\n".join(p["symbols"]))
            w("```")
            w("")
    else:
        w("(`perf` is not usable here, so there is no symbol profile.)")
        w("")
    missed = [name for name, _, _, ok in targets if not ok]
    if missed:
        w("### What would move the missed targets")
        w("")
        for line in levers(facts, by, lat, ratios, m, cmds, n3, prof, cpu_us, redis_reads, targets):
            w(f"- {line}")
        w("")
    if a.notes and Path(a.notes).exists():
        w(Path(a.notes).read_text().rstrip())
        w("")
    w("## Chart")
    w("")
    w(f"![throughput and latency]({a.stem}.png)")
    w("")
    w("## Commands")
    w("")
    w("```sh")
    w("make bench    # = scripts/bench.sh: installs wrk and matplotlib/redis-py if missing, release build, runs all")
    w(f"BENCH_ROUNDS={a.rounds} BENCH_DURATION={a.duration} BENCH_CONNECTIONS={a.connections} BENCH_MEMORY_N={a.memory_n} make bench")
    w(f"wrk -t{a.threads} -c{a.connections} -d{a.duration}s --timeout 5s -s bench/wrk-post.lua <url>   # BENCH_BODY, BENCH_HEADERS")
    w("target/release/bench-load --url <gateway>/v1/messages --rate <r> --duration 10 --body '<json>' --header 'Authorization: Bearer sandbox-dev-key'")
    w("```")
    path = a.out / f"{a.stem}.md"
    path.write_text("\n".join(L) + "\n")
    return path, ratios, targets, m


def levers(facts, by, lat, ratios, m, cmds, n3, prof, cpu_us, redis_reads, targets):
    """Data-driven reading of the measurements: each point appears only when its symptom was measured."""
    out = []
    nproc = facts["nproc"]
    missed = {name.split(" (")[0].split(" at ")[0] for name, _, _, ok in targets if not ok}

    def per_msg(cmd):
        return cmds.get(cmd, [0, 0])[0] / n3

    comp = ("gateway", "redis", "sandbox", "loadgen")
    s2 = {k: med([cpu_us(r, k) for r in by["S2"]]) for k in comp}
    s3 = {k: med([cpu_us(r, k) for r in by["S3"]]) for k in comp}
    for key, ratio, scen, cost in (("S3/S0", 0.25, "S3", s3), ("S2/S0", 0.40, "S2", s2)):
        if key in missed:
            want = ratio * m["S0"]
            out.append(f"{key}: reaching {ratio} x S0 = {want:,.0f}/s on {nproc} cores leaves {nproc * 1e6 / want:.0f} µs "
                       f"of CPU per message for everything on the machine; {scen} spends {sum(cost.values()):.0f} µs "
                       f"(gateway {cost['gateway']:.0f}, Redis {cost['redis']:.0f}, sandbox {cost['sandbox']:.0f}, "
                       f"load generator {cost['loadgen']:.0f}). S0's server needs "
                       f"{med([cpu_us(r, 'echo') for r in by['S0']]):.0f} µs per request: it touches nothing.")
    r2, r3 = med([redis_reads(r) for r in by["S2"]]), med([redis_reads(r) for r in by["S3"]])
    if r3 > 0:
        out.append(f"Round trips are the cost driver: Redis read {r2:.1f} times per accepted message in S2 and {r3:.1f} "
                   f"times per submitted message in S3, about {s3['redis'] / r3:.0f} µs of Redis CPU per read "
                   "(command time is only part of it: see the table above), and each one costs the gateway a socket "
                   "write, a read and a task wake-up.")
    if prof and prof.get("gateway"):
        kern = next((l for l in prof["gateway"]["dsos"] if "kernel" in l), None)
        if kern:
            out.append(f"The gateway's profile has {kern.split('%')[0].strip()} % of its samples in the kernel "
                       "(loopback TCP and scheduler wake-ups): consistent with per-message round trips, not "
                       "computation, being what costs.")
    if per_msg("ping") >= 0.5:
        out.append(f"{per_msg('ping'):.1f} `PING` (+ `UNWATCH`) round trips per message: deadpool-redis checks every "
                   "connection with a round trip each time one is taken from the pool (`Manager::recycle`). A redis-rs "
                   "`MultiplexedConnection` is made to be shared by concurrent tasks (it pipelines their commands "
                   "itself); sharing a few of those instead of a pool checkout per call removes these round trips.")
    if per_msg("hgetall") >= 0.5:
        out.append(f"{per_msg('hgetall'):.1f} `HGETALL` per submitted message although this config has no event "
                   "subscription: the `message.status` event reads the whole record (`GET` of the id index, "
                   "`HGETALL`, JSON decode) before finding that nobody wants the event. Checking for a subscriber "
                   "first (or building the event from what the worker holds) saves two round trips per message.")
    if per_msg("psetex") >= 0.5 and per_msg("evalsha") >= 2:
        ev = cmds.get("evalsha", [0, 0])
        out.append(f"{per_msg('evalsha'):.1f} scripts per message at {ev[1] / max(1, ev[0]):.0f} µs each inside Redis; "
                   "recording a submit takes four round trips (the `submitted` script, `PEXPIRE` of the id index, "
                   "`PSETEX` of the provider-id link, the `drain` script of the callback buffer, which is almost "
                   "always empty), and accepting takes two (`SET` of the id index, the `accept` script). Those keys "
                   "live in other hash slots, so they cannot join the scripts on a cluster, but they can travel in one "
                   "pipeline with them: 2 + 4 round trips become 1 + 1.")
    ev = cmds.get("evalsha", [0, 0])
    if ev[0]:
        inner = sum(v[1] for k, v in cmds.items() if k not in ("evalsha", "eval")) / n3
        total = ev[1] / n3
        out.append(f"Scripts: {per_msg('evalsha'):.2f} script calls per message (batches of about "
                   f"{1 / max(1e-9, per_msg('evalsha')):.0f}), {total:.0f} µs of Redis time per message inside them; every "
                   f"command (those the scripts run and the few sent directly) takes {inner:.0f} µs per message, so "
                   f"the Lua around the commands (keys and fields built as strings, arguments converted, "
                   f"`redis.call` itself) takes at least {max(0.0, total - inner):.0f} µs. "
                   "The search indexes' `ZADD`s into sorted sets of every queued and every submitted message are the "
                   "dearest commands (see the table); the bench sends every message to one recipient, so its "
                   "recipient index is as large as the status indexes.")
    busy = med([r["cpu"]["machine_busy_cores"] for r in by["S3"]])
    busy2 = med([r["cpu"]["machine_busy_cores"] for r in by["S2"]])
    if min(busy, busy2) < 0.9 * nproc:
        out.append(f"Not only CPU: S2 kept {busy2:.2f} and S3 {busy:.2f} of {nproc} cores busy, so part of the limit "
                   "is waiting. Each message's round trips run one after another (see reads per message), each "
                   "one a hand-off to the Redis connection's driver task, often on another thread (the scheduler "
                   "switches in the profile), all calls of a process sharing one multiplexed connection; a sender "
                   "has at most 4 batch calls in Redis at once and each lane at most `concurrency_per_lane` = 256 "
                   "sends in flight (1,024 measured no faster than 512 while this was tuned).")
    if busy >= 0.9 * nproc:
        other = med([r["cpu"]["other_cores"] for r in by["S3"]])
        out.append(f"S3 is CPU-bound here: {busy:.2f} of {nproc} cores were busy during its runs ({other:.2f} of them "
                   "other processes), shared by the gateway, Redis, the sandbox and wrk; every µs per message saved "
                   "raises the ceiling, and on a machine of its own (Redis and the provider elsewhere) the gateway "
                   "would have both cores.")
    if "S4/S3" in ratios:
        out.append(f"S4/S3 = {ratios['S4/S3']:.2f}: with `appendfsync always` Redis writes and fsyncs the AOF before "
                   "answering each batch of writes, so every write round trip waits for the disk; fewer write round "
                   "trips per message cut fsyncs in proportion. `everysec` (the design's setting) loses at most about "
                   "a second of acknowledged writes on a power cut.")
    if "accept p99" in missed and lat:
        srv = med([r["server_histograms"]["accept"]["p99_le_ms"] for r in lat])
        other = med([r["cpu"]["other_cores"] for r in lat])
        busy = med([r["cpu"]["machine_busy_cores"] for r in lat])
        out.append(f"accept p99: the gateway's own histogram puts the p99 at <= {srv:g} ms while the client saw "
                   f"{med([pct(r['accept_ms'], 99) for r in lat]):.1f} ms; the machine had {busy:.2f} of {nproc} cores "
                   f"busy ({other:.2f} by other processes) at half of S3's rate, so the tail is mostly waiting for a "
                   "CPU. Halving the per-message CPU (the round trips above) halves the load at this rate.")
    if "accept-to-submitted p99" in missed and lat:
        out.append("accept-to-submitted p99: the same CPU contention, plus a worker claims in batches after being "
                   "woken, so a message can wait for the batch ahead of it to be sent and recorded.")
    return out


def chart(a, runs, lat, m, started):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ((ax1, ax2), (ax3, ax4)) = plt.subplots(2, 2, figsize=(14, 10))
    by = {s: [r for r in runs if r["scenario"] == s] for s in SCENARIOS}
    shown = [s for s in SCENARIOS if by[s]]
    label = {"S0": "S0 echo", "S1": "S1 sandbox", "S2": "S2 accept", "S3": "S3 pipeline", "S4": "S4 fsync always",
             "P1": "P1 Node+BullMQ"}
    color = {"S0": "#9e9e9e", "S1": "#bdbdbd", "S2": "#4c78a8", "S3": "#f58518", "S4": "#e45756", "P1": "#54a24b"}
    names, colors = [label[s] for s in shown], [color[s] for s in shown]
    xs = list(range(len(shown)))

    # Throughput: median bar, min-max whisker, every run as a dot (log scale: S0 and S3 differ ~50x).
    meds = [m[s] for s in shown]
    lo = [m[s] - min(r["rate"] for r in by[s]) for s in shown]
    hi = [max(r["rate"] for r in by[s]) - m[s] for s in shown]
    ax1.bar(xs, meds, yerr=[lo, hi], capsize=6, color=colors)
    for i, s in enumerate(shown):
        ax1.scatter([i] * len(by[s]), [r["rate"] for r in by[s]], color="black", s=12, zorder=3)
        ax1.annotate(f"{m[s]:,.0f}", (i, m[s]), textcoords="offset points", xytext=(0, 10), ha="center", fontsize=9)
    ax1.axhline(0.40 * m["S0"], color="#4c78a8", ls="--", lw=1, label=f"S2 target 0.40 x S0 = {0.40 * m['S0']:,.0f}")
    ax1.axhline(0.25 * m["S0"], color="#f58518", ls="--", lw=1, label=f"S3 target 0.25 x S0 = {0.25 * m['S0']:,.0f}")
    ax1.set_yscale("log")
    ax1.set_ylim(top=max(meds) * 2)
    ax1.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax1.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax1.set_xticks(xs, names, fontsize=9)
    ax1.set_ylabel("requests or messages per second (log)")
    ax1.set_title(f"Throughput: median, min-max, each run (wrk -c{a.connections}, {a.duration} s, {a.rounds} runs)")
    ax1.legend(fontsize=8, loc="upper right")

    # Latency under saturation: wrk's p50 and p99 per scenario (S3/S4: of accepting, not submitting).
    w = 0.38
    p50 = [med([r["wrk"]["p50_us"] / 1000 for r in by[s]]) for s in shown]
    p99 = [med([r["wrk"]["p99_us"] / 1000 for r in by[s]]) for s in shown]
    ax2.bar([x - w / 2 for x in xs], p50, w, label="p50", color="#72b7b2")
    ax2.bar([x + w / 2 for x in xs], p99, w, label="p99", color="#54a24b")
    for x, v in zip(xs, p99):
        ax2.annotate(f"{v:.0f}", (x + w / 2, v), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    ax2.set_xticks(xs, names, fontsize=9)
    ax2.set_ylabel("ms")
    ax2.set_title(f"HTTP latency at saturation (wrk, {a.connections} connections), median of runs")
    ax2.legend(fontsize=8)

    # Latency at half of S3's rate against the targets.
    labels = ["accept p50", "accept p99", "to submitted p50", "to submitted p99"]
    vals = [[pct(r["accept_ms"], 50) for r in lat], [pct(r["accept_ms"], 99) for r in lat],
            [pct(r["a2s_ms"], 50) for r in lat], [pct(r["a2s_ms"], 99) for r in lat]]
    mv = [med(v) for v in vals]
    ax3.bar(range(4), mv, yerr=[[x - min(v) for x, v in zip(mv, vals)], [max(v) - x for x, v in zip(mv, vals)]],
            capsize=6, color=["#4c78a8", "#4c78a8", "#f58518", "#f58518"])
    for i, x in enumerate(mv):
        ax3.annotate(f"{x:.1f}", (i, x), textcoords="offset points", xytext=(12, 4), ha="left", fontsize=9)
    ax3.hlines([10, 25], [0.6, 2.6], [1.4, 3.4], colors="red", linestyles="--", lw=1.2)
    ax3.text(1.4, 10, "target 10 ms", color="red", fontsize=8, va="bottom", ha="right")
    ax3.text(3.4, 25, "target 25 ms", color="red", fontsize=8, va="bottom", ha="right")
    ax3.set_xticks(range(4), labels, fontsize=9)
    ax3.set_ylabel("ms")
    rate = lat[0]["target_rate"] if lat else 0
    ax3.set_title(f"Latency at 50 % of S3 ({rate:,.0f}/s, open loop): median, min-max of {len(lat)} runs")

    # CPU per message by component.
    groups = [("S2", by["S2"]), ("S3", by["S3"]), ("S4", by["S4"]), ("50 % of S3", lat)]
    comps = [("gateway", "#4c78a8"), ("redis", "#e45756"), ("sandbox", "#bdbdbd"), ("loadgen", "#72b7b2")]
    bottom = [0.0] * len(groups)
    for comp, color in comps:
        vals = [med([1e6 * r["cpu"]["cpu_s"].get(comp, 0) / max(1, r["messages"]) for r in rs]) for _, rs in groups]
        ax4.bar(range(len(groups)), vals, bottom=bottom, color=color,
                label={"redis": "Redis", "loadgen": "load generator"}.get(comp, comp))
        bottom = [b + v for b, v in zip(bottom, vals)]
    for i, b in enumerate(bottom):
        ax4.annotate(f"{b:.0f}", (i, b), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=9)
    ax4.set_xticks(range(len(groups)), [g for g, _ in groups])
    ax4.set_ylabel("CPU µs per message")
    ax4.set_title("CPU per message by process (/proc utime+stime)")
    ax4.legend(fontsize=8)

    fig.suptitle(f"make bench {started:%Y-%m-%d %H:%M}: gateway vs the limits of this machine", fontsize=12)
    fig.tight_layout()
    path = a.out / f"{a.stem}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def render_again(a):
    """Writes the report and chart of an earlier run again from its raw data (same numbers)."""
    raw = json.loads(a.from_json.read_text())
    for k, v in raw.get("settings", {}).items():
        setattr(a, k, v)
    a.stem = raw.get("stem") or dt.datetime.fromtimestamp(a.from_json.stat().st_mtime).strftime("%Y-%m-%d")
    started = dt.datetime.fromisoformat(raw["started"]) if "started" in raw else dt.datetime.fromtimestamp(
        a.from_json.stat().st_mtime)
    finished = dt.datetime.fromisoformat(raw["finished"]) if "finished" in raw else started
    a.out.mkdir(parents=True, exist_ok=True)
    report, _, _, m = write_report(a, raw["facts"], raw["runs"], raw["latency"], raw["memory"], raw["profile"],
                                   started, finished, raw.get("idle"), raw.get("claim"))
    png = chart(a, raw["runs"], raw["latency"], m, started)
    log(f"wrote {report} and {png}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    p.add_argument("--tmp", type=Path, default=Path(__file__).parent / "tmp")
    p.add_argument("--from-json", type=Path,
                   help="only write the report and chart again from a run's raw data (bench/tmp/last-run.json)")
    p.add_argument("--bin-dir", type=Path)
    p.add_argument("--gateway-config", type=Path)
    for name in ("redis", "sandbox", "echo", "gateway", "peer"):
        p.add_argument(f"--{name}-port", type=int)
    p.add_argument("--peer-dir", type=Path, help="bench/peer with its node_modules (P1 is skipped without it)")
    for name in ("redis", "echo"):
        p.add_argument(f"--{name}-pid", type=int)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--memory-n", type=int, default=50000)
    p.add_argument("--drain-limit", type=float, default=120.0)
    p.add_argument("--quiet-wait", type=float, default=20.0, help="seconds to wait for other load to drop before a run")
    p.add_argument("--quiet-threshold", type=float, default=0.3, help="cores of other load considered quiet")
    p.add_argument("--notes", help="a markdown file appended to the report's analysis")
    p.add_argument("--only", default="all", choices=["all", "urgency", "idle-claim", "pipeline"],
                   help="urgency: only the search latency and index memory figures; idle-claim: only the idle "
                        "and claim cost figures; pipeline: only S0, S2, S3 and P1, logged with their CPU per "
                        "message, no report (a quick look while working on the hot path)")
    p.add_argument("--idle-accounts", type=int, default=1000)
    p.add_argument("--idle-warmup", type=int, default=30, help="seconds before the idle window (every lane looks once at start)")
    # At least `idle_max_ms` (5 minutes): every idle lane looks about once in it, so the window
    # shows the steady rate rather than a part of one round of looks.
    p.add_argument("--idle-window", type=int, default=300)
    p.add_argument("--claims", type=int, default=60, help="claims per claim-cost measurement")
    p.add_argument("--urgency-n", type=int, default=100_000)
    p.add_argument("--search-queries", type=int, default=300)
    a = p.parse_args()
    if a.from_json:
        return render_again(a)
    missing = [k for k in ("bin_dir", "gateway_config", "redis_port", "sandbox_port", "echo_port", "gateway_port",
                           "redis_pid", "echo_pid") if getattr(a, k) is None]
    if missing:
        p.error("missing: " + ", ".join("--" + k.replace("_", "-") for k in missing))
    signal.signal(signal.SIGTERM, on_signal)
    a.tmp.mkdir(parents=True, exist_ok=True)
    a.out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now()
    a.stem = f"{started:%Y-%m-%d}"
    if (a.out / f"{a.stem}.md").exists():
        a.stem = f"{started:%Y-%m-%d-%H%M%S}"

    b = Bench(a)
    facts = machine_facts(a)
    log(f"{facts['nproc']} CPUs ({facts['cpu_model']}), load average {facts['loadavg_start']}")
    if a.only == "urgency":
        try:
            u = b.urgency()
        finally:
            b.close()
        path = write_urgency_report(a, facts, u, started)
        log(f"wrote {path}")
        return 0 if u["ok"] else 1
    if a.only == "idle-claim":
        try:
            idle = b.idle()
            claim = b.claim_cost()
        finally:
            b.close()
        log(f"wrote {write_idle_claim_report(a, facts, idle, claim, started)}")
        return 0
    runs = []
    try:
        for rnd in range(1, a.rounds + 1):
            for s in SCENARIOS:
                if a.only == "pipeline" and s not in ("S0", "S2", "S3", "P1"):
                    continue
                if s in ("S0", "S1"):
                    r = b.http_only(s, rnd)
                elif s == "S2":
                    r = b.accept_only(rnd)
                elif s == "P1":
                    if not a.peer_dir:
                        continue
                    r = b.peer(rnd)
                else:
                    r = b.full(s, rnd)
                runs.append(r)
                extra = f", checks {'ok' if r['checks']['ok'] else 'FAILED'}" if "checks" in r else ""
                log(f"round {rnd} {s}: {r['rate']:,.0f}/s (other load {r['cpu']['other_cores']:.2f} cores{extra})")
                if a.only == "pipeline":
                    n = max(1, r.get("messages") or 1)
                    us = {k: round(1e6 * v / n, 1) for k, v in r["cpu"]["cpu_s"].items() if v}
                    log(f"  CPU µs per message {us}, busy {r['cpu']['machine_busy_cores']:.2f} cores")
                    cmds = sorted((r.get("redis_commands") or {}).items(), key=lambda kv: -kv[1]["usec"])[:10]
                    log("  Redis per message: " + ", ".join(
                        f"{k} {v['calls'] / n:.2f} x {v['usec'] / max(1, v['calls']):.1f} µs" for k, v in cmds))
        if a.only == "pipeline":
            if os.environ.get("BENCH_PERF") and perf_works():
                for name, prof in b.profile().items():
                    log(f"perf {name} ({prof['mode']}):\n" + "\n".join(prof["dsos"] + prof["symbols"]))
            return 0 if all(r["checks"]["ok"] for r in runs if "checks" in r) else 1
        s3 = med([r["rate"] for r in runs if r["scenario"] == "S3"])
        lat = []
        for rnd in range(1, a.rounds + 1):
            r = b.latency(rnd, 0.5 * s3)
            lat.append(r)
            log(f"latency {rnd} at {0.5 * s3:,.0f}/s: accept p99 {pct(r['accept_ms'], 99):.2f} ms, "
                f"to submitted p99 {pct(r['a2s_ms'], 99):.0f} ms, checks {'ok' if r['checks']['ok'] else 'FAILED'}")
        mem = b.memory()
        log(f"memory: {mem['per_msg']:.0f} B per queued message")
        u = b.urgency()
        log(f"urgency: {u['per_msg']:.0f} B per queued message with the indexes; wrote "
            f"{write_urgency_report(a, facts, u, started)}")
        idle = b.idle()
        claim = b.claim_cost()
        prof = None
        if perf_works():
            log("profiling the gateway and Redis during one more S3 run (perf)")
            prof = b.profile()
    except Stop as e:
        log(f"stopped: {e}")
        return 130
    finally:
        b.close()
    finished = dt.datetime.now()
    facts["loadavg_end"] = loadavg()
    raw = {"facts": facts, "runs": runs, "latency": lat, "memory": mem, "profile": prof, "stem": a.stem,
           "idle": idle, "claim": claim,
           "started": started.isoformat(), "finished": finished.isoformat(),
           "settings": {k: getattr(a, k) for k in ("rounds", "duration", "connections", "threads", "memory_n")}}
    (a.tmp / "last-run.json").write_text(json.dumps(raw, default=str))
    report, ratios, targets, m = write_report(a, facts, runs, lat, mem, prof, started, finished, idle, claim)
    png = chart(a, runs, lat, m, started)
    log(f"wrote {report} and {png}")
    for name, val, want, ok in targets:
        log(f"  {'met   ' if ok else 'MISSED'} {name}: {val} (target {want})")
    checked = [r for r in runs if "checks" in r] + lat
    if not all(r["checks"]["ok"] for r in checked) or not mem["ok"]:
        log("a zero-loss / drain check FAILED (see the report)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
