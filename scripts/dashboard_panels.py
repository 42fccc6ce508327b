"""Evaluates every panel query of a Grafana dashboard through Prometheus' HTTP API (used by
scripts/dashboards-check.sh). Args: dashboard, Prometheus URL, pending list, metrics.rs, summary
path. Exits 1 when a panel query returns no series (unless pending) or the dashboard has problems.
"""
import json, re, sys, urllib.parse, urllib.request

dashboard_path, prom, pending_path, metrics_rs, summary_path = sys.argv[1:6]
pending = {}
for line in open(pending_path):
    line = line.rstrip("\n")
    if line:
        title, _, reason = line.partition("|")
        pending[title] = reason

dash = json.load(open(dashboard_path))
problems = []
if dash.get("schemaVersion", 0) < 36:
    problems.append(f"schemaVersion {dash.get('schemaVersion')} is too old")

def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))

VARS = {"$__rate_interval": "1m", "$__interval": "5s", "$__range": "5m", "${__rate_interval}": "1m",
        "${__interval}": "5s", "${__range}": "5m"}

def query(expr):
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(body.get("error", "query failed"))
    data = body["data"]
    if data["resultType"] in ("vector", "matrix"):
        return len(data["result"])
    return 1

ids, titles = set(), set()
rows = []  # (state, panel, ref, detail)
seen_pending = set()
exprs_all = []
for p in walk(dash.get("panels", [])):
    if p.get("type") == "row":
        continue
    title = p.get("title", "")
    if p.get("id") in ids:
        problems.append(f"duplicate panel id {p.get('id')}")
    ids.add(p.get("id"))
    if title in titles:
        problems.append(f"duplicate panel title {title!r}")
    titles.add(title)
    if p.get("datasource", {}).get("uid") != "prometheus":
        problems.append(f"panel {title!r}: datasource uid is not 'prometheus'")
    targets = p.get("targets", [])
    if not targets:
        problems.append(f"panel {title!r} has no query")
    for t in targets:
        expr = t.get("expr", "")
        exprs_all.append(expr)
        if t.get("datasource", {}).get("uid") != "prometheus":
            problems.append(f"panel {title!r} query {t.get('refId')}: datasource uid is not 'prometheus'")
        if re.search(r"\bor\s+vector\s*\(", expr):
            problems.append(f"panel {title!r} query {t.get('refId')}: 'or vector(...)' hides missing data")
        q = expr
        for k, v in VARS.items():
            q = q.replace(k, v)
        if "$" in q:
            problems.append(f"panel {title!r} query {t.get('refId')}: unknown variable in {expr!r}")
            continue
        try:
            n = query(q)
            err = ""
        except Exception as e:  # a query Prometheus refuses is a failure, pending or not
            n, err = 0, str(e)
        ref = t.get("refId", "?")
        if err:
            rows.append(("FAIL", title, ref, f"query error: {err}"))
        elif title in pending:
            seen_pending.add(title)
            state = "PENDING+DATA" if n else "PENDING"
            rows.append((state, title, ref, f"{n} series" + ("; returns data now: remove it from PENDING" if n else f"; {pending[title]}")))
        elif n:
            rows.append(("OK", title, ref, f"{n} series"))
        else:
            rows.append(("FAIL", title, ref, "no series"))

for title in pending:
    if title not in seen_pending:
        problems.append(f"PENDING names {title!r}, which is not a panel of the dashboard")

# Every metric family the gateway defines must be on the dashboard.
families = sorted(set(re.findall(r'"(gateway_[a-z0-9_]+)"', open(metrics_rs).read())))
joined = "\n".join(exprs_all)
missing = [f for f in families if f not in joined]
for f in missing:
    problems.append(f"metric family {f} (in {metrics_rs}) is on no panel")

width = max(len(r[1]) for r in rows) + 4
for state, title, ref, detail in rows:
    print(f"  {state:<13} {title + ' [' + ref + ']':<{width}} {detail}")
for p in problems:
    print(f"  FAIL          {p}")

# Per panel: failed if any of its queries failed, pending if it is in PENDING, ok otherwise.
state = {}
for st, title, _, _ in rows:
    prev = state.get(title, "OK")
    state[title] = "FAIL" if "FAIL" in (st, prev) else ("PENDING" if st.startswith("PENDING") else prev)
panels_total = len(titles)
ok = sum(1 for v in state.values() if v == "OK")
pend = sum(1 for v in state.values() if v == "PENDING")
failed = sum(1 for v in state.values() if v == "FAIL")
queries_ok = sum(1 for r in rows if r[0] == "OK")
queries_pending = sum(1 for r in rows if r[0].startswith("PENDING"))
queries_failed = sum(1 for r in rows if r[0] == "FAIL")
pending_panels = sorted(t for t, v in state.items() if v == "PENDING")
with open(summary_path, "w") as f:
    f.write(f"panels={panels_total}\nok={ok}\npending={pend}\nfailed={failed}\nproblems={len(problems)}\n")
    f.write(f"queries={len(rows)}\nqueries_ok={queries_ok}\nqueries_pending={queries_pending}\nqueries_failed={queries_failed}\n")
    f.write(f"families={len(families)}\n")
    for t in pending_panels:
        f.write(f"pending_panel={t}\n")
sys.exit(1 if failed or problems else 0)
