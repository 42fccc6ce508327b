#!/usr/bin/env bash
# `make deploy-check`: checks what can be checked of deploy/ without Docker or a cluster.
#   1. every YAML, JSON and TOML file under deploy/ parses;
#   2. docker-compose.yml: the services, Redis persistence flags, and every file it mounts or builds
#      from exists; deploy/config/compose.toml points at the compose service names;
#   3. deploy/Dockerfile: multi-stage, builds both binaries with --locked, runs as non-root, exposes
#      8080, and everything it COPYs exists and is let through Dockerfile.dockerignore;
#   4. Prometheus and Grafana wiring: rule files, job name, datasource uid, dashboard folder;
#   5. deploy/k8s: the required kinds, probes, resources, security context, and that every
#      ConfigMap/Secret/Deployment reference resolves;
#   6. the gateway itself validates deploy/config/compose.toml and the k8s configuration
#      (Secret gateway.toml + ConfigMap variables): it must start with them (it is stopped at once).
# Env: BIN_DIR=dir uses the gateway binary there instead of building it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }
die() { printf 'deploy-check: FAILED: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null 2>&1 || die "python3 is missing"
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  say "installing PyYAML (python3 -m pip install pyyaml)"
  python3 -m pip install -q pyyaml || die "cannot install PyYAML"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/deploy-check.XXXXXX")
gw_pid=""
cleanup() {
  local rc=$?
  trap - INT TERM EXIT
  if [ -n "$gw_pid" ]; then
    kill "$gw_pid" 2>/dev/null || true
    wait "$gw_pid" 2>/dev/null || true
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup INT TERM EXIT

# ------------------------------------------------------------------------------------- static
say "static checks of deploy/"
python3 - "$TMP" <<'PY'
import glob, json, os, re, sys, tomllib, urllib.parse
import yaml

tmp = sys.argv[1]
failures = []
checks = 0

def check(cond, what):
    global checks
    checks += 1
    if cond:
        print(f"  ok    {what}")
    else:
        print(f"  FAIL  {what}")
        failures.append(what)
    return cond

def exists(path, what):
    return check(os.path.exists(path), f"{what}: {path} exists")

# ---------------------------------------------------------------- 1. parse
docs = {}
files = sorted(p for p in glob.glob("deploy/**/*", recursive=True) if os.path.isfile(p))
for path in files:
    try:
        if path.endswith((".yml", ".yaml")):
            with open(path) as f:
                docs[path] = [d for d in yaml.safe_load_all(f) if d is not None]
        elif path.endswith(".json"):
            with open(path) as f:
                docs[path] = json.load(f)
        elif path.endswith(".toml"):
            with open(path, "rb") as f:
                docs[path] = tomllib.load(f)
        else:
            continue
        check(True, f"parses: {path}")
    except Exception as e:  # noqa: BLE001 - any parse error is the finding
        check(False, f"parses: {path} ({e})")
if failures:
    sys.exit(1)

# ---------------------------------------------------------------- 2. compose
compose = docs["deploy/docker-compose.yml"][0]
services = compose.get("services", {})
for name in ("redis", "sandbox", "gateway", "prometheus", "grafana"):
    check(name in services, f"compose: service {name}")

def mounts(svc):
    for v in services.get(svc, {}).get("volumes", []):
        src, _, rest = v.partition(":")
        target = rest.split(":")[0]
        yield src, target

for svc_name, svc in services.items():
    build = svc.get("build")
    if build:
        ctx = os.path.normpath(os.path.join("deploy", build.get("context", ".")))
        exists(ctx, f"compose: {svc_name} build context")
        exists(os.path.join(ctx, build.get("dockerfile", "Dockerfile")), f"compose: {svc_name} dockerfile")
    for src, target in mounts(svc_name):
        if src.startswith((".", "/")):
            exists(os.path.normpath(os.path.join("deploy", src)), f"compose: {svc_name} mount for {target}")
        else:
            check(src in (compose.get("volumes") or {}), f"compose: {svc_name} named volume {src} is declared")

redis_cmd = " ".join(str(x) for x in services["redis"].get("command", []))
for flag in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
    check(flag in redis_cmd, f"compose: redis runs with {flag}")
check(any(t == "/data" and not s.startswith(".") for s, t in mounts("redis")), "compose: redis keeps /data in a volume")

gw = services["gateway"]
gw_mounts = dict((t, s) for s, t in mounts("gateway"))
cmd = gw.get("command", [])
config_path = cmd[cmd.index("--config") + 1] if "--config" in cmd else None
check(config_path in gw_mounts, f"compose: gateway --config {config_path} is mounted")
check(gw_mounts.get(config_path) == "./config/compose.toml", "compose: gateway uses deploy/config/compose.toml")
check(any("8080" in str(p) for p in gw.get("ports", [])), "compose: gateway publishes 8080")
sb_env = services["sandbox"].get("environment", {})
check(str(sb_env.get("SANDBOX_INCS_CALLBACK_URL", "")).startswith("http://gateway:8080/callbacks/incs/"),
      "compose: sandbox sends INCS callbacks to the gateway service")

ctoml = docs["deploy/config/compose.toml"]
raw = open("deploy/config/compose.toml").read()
check(ctoml["redis"]["url"].startswith("redis://redis:"), "compose.toml: redis.url names the redis service")
check(ctoml["server"]["listen"].startswith("0.0.0.0:8080"), "compose.toml: listens on 0.0.0.0:8080")
check("127.0.0.1" not in re.sub(r"(?m)^#.*$", "", raw), "compose.toml: no 127.0.0.1 outside comments")
for acc in ctoml.get("accounts", []):
    for k, v in (acc.get("incs") or {}).items():
        if k.endswith("_url"):
            check(v.startswith("http://sandbox:8090"), f"compose.toml: accounts[{acc['name']}].incs.{k} names the sandbox service")
sandbox_toml = tomllib.load(open("deploy/config/sandbox.toml", "rb"))
check({a["name"] for a in sandbox_toml.get("accounts", [])} == {a["name"] for a in ctoml.get("accounts", [])}
      and {s["name"] for s in sandbox_toml.get("senders", [])} == {s["name"] for s in ctoml.get("senders", [])},
      "compose.toml: same accounts and senders as sandbox.toml")

prom_mounts = dict((t, s) for s, t in mounts("prometheus"))
prom_cmd = " ".join(services["prometheus"].get("command", []))
m = re.search(r"--config\.file=(\S+)", prom_cmd)
check(m and m.group(1) in prom_mounts and prom_mounts[m.group(1)] == "./prometheus/prometheus.yml",
      "compose: prometheus runs deploy/prometheus/prometheus.yml")
graf_mounts = dict((t, s) for s, t in mounts("grafana"))
check(graf_mounts.get("/etc/grafana/provisioning/datasources") == "./grafana/provisioning/datasources",
      "compose: grafana datasource provisioning mounted")
check(graf_mounts.get("/etc/grafana/provisioning/dashboards") == "./grafana/provisioning/dashboards",
      "compose: grafana dashboard provisioning mounted")

# ---------------------------------------------------------------- 4. prometheus / grafana
promcfg = docs["deploy/prometheus/prometheus.yml"][0]
for rf in promcfg.get("rule_files", []):
    exists(os.path.join("deploy/prometheus", rf), "prometheus.yml: rule file")
    container_rf = os.path.join(os.path.dirname(m.group(1)) if m else "/etc/prometheus", rf)
    check(container_rf in prom_mounts, f"compose: prometheus mounts rule file at {container_rf}")
jobs = {sc.get("job_name"): sc for sc in promcfg.get("scrape_configs", [])}
check("gateway" in jobs, "prometheus.yml: job_name gateway (alerts and dashboard select job=\"gateway\")")
targets = [t for sc in jobs.get("gateway", {}).get("static_configs", []) for t in sc.get("targets", [])]
check("gateway:8080" in targets, "prometheus.yml: scrapes the compose gateway service")

ds = docs["deploy/grafana/provisioning/datasources/prometheus.yml"][0]["datasources"]
check(any(d.get("uid") == "prometheus" and d.get("type") == "prometheus" for d in ds), "grafana: datasource uid prometheus")
check(any(d.get("url", "").startswith("http://prometheus:9090") for d in ds), "grafana: datasource points at the prometheus service")
providers = docs["deploy/grafana/provisioning/dashboards/dashboards.yml"][0]["providers"]
paths = [p.get("options", {}).get("path") for p in providers]
check(any(graf_mounts.get(pth) == "./grafana/dashboards" for pth in paths),
      "grafana: dashboard provider path is where compose mounts deploy/grafana/dashboards")
for path in sorted(glob.glob("deploy/grafana/dashboards/*.json")):
    dash = docs[path]
    uids = set()
    def walk(ps):
        for p in ps:
            yield p
            yield from walk(p.get("panels", []))
    for p in walk(dash.get("panels", [])):
        if p.get("type") == "row":
            continue
        uids.add((p.get("datasource") or {}).get("uid"))
        for t in p.get("targets", []):
            uids.add((t.get("datasource") or {}).get("uid"))
    check(uids == {"prometheus"}, f"{path}: every panel and query uses datasource uid prometheus")
    check(dash.get("schemaVersion", 0) >= 36 and dash.get("uid"), f"{path}: has a uid and schemaVersion {dash.get('schemaVersion')}")

# ---------------------------------------------------------------- 3. Dockerfile
df = open("deploy/Dockerfile").read()
df_lines = [l.strip() for l in re.sub(r"\\\n", " ", df).splitlines() if l.strip() and not l.strip().startswith("#")]
froms = [l for l in df_lines if l.upper().startswith("FROM ")]
check(len(froms) >= 2, f"Dockerfile: multi-stage ({len(froms)} stages)")
check(re.search(r"cargo build --release --locked\b.*-p gateway-http\b.*-p provider-sandbox\b", df) is not None,
      "Dockerfile: cargo build --release --locked -p gateway-http -p provider-sandbox")
final = df_lines[df_lines.index(froms[-1]):]
users = [l.split()[1] for l in final if l.upper().startswith("USER ")]
check(bool(users) and users[-1].split(":")[0] not in ("root", "0"), f"Dockerfile: final stage runs as non-root ({users[-1] if users else 'no USER'})")
check(any(l.upper().startswith("EXPOSE ") and "8080" in l for l in final), "Dockerfile: EXPOSE 8080")
check(any("ca-certificates" in l for l in final), "Dockerfile: final stage installs ca-certificates")
ignore = open("deploy/Dockerfile.dockerignore").read().split() if os.path.exists("deploy/Dockerfile.dockerignore") else []
context = os.path.normpath(os.path.join("deploy", services["gateway"]["build"]["context"]))
for l in df_lines:
    if not l.upper().startswith("COPY ") or "--from=" in l:
        continue
    parts = [p for p in l.split()[1:] if not p.startswith("--")]
    for src in parts[:-1]:
        exists(os.path.normpath(os.path.join(context, src)), "Dockerfile: COPY source")
        if ignore:
            check(f"!{src.rstrip('/')}" in [i.rstrip("/") for i in ignore], f"Dockerfile.dockerignore lets {src} through")
copied_bins = [l for l in final if l.upper().startswith("COPY ") and "--from=" in l]
check(any("gateway" in l and "provider-sandbox" in l for l in copied_bins), "Dockerfile: final stage gets both binaries")

# ---------------------------------------------------------------- 5. k8s
objs = []
for path in sorted(glob.glob("deploy/k8s/*.yaml")):
    if os.path.basename(path) == "kustomization.yaml":
        continue
    for d in docs[path]:
        objs.append((path, d))
kinds = {}
for path, d in objs:
    kinds.setdefault(d.get("kind"), []).append(d)
for kind in ("Deployment", "Service", "ConfigMap", "Secret", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
    check(kind in kinds, f"k8s: a {kind}")
    for d in kinds.get(kind, []):
        check(bool(d.get("apiVersion")) and bool(d.get("metadata", {}).get("name")), f"k8s: {kind} has apiVersion and metadata.name")

kust = docs.get("deploy/k8s/kustomization.yaml", [{}])[0]
for r in kust.get("resources", []):
    exists(os.path.join("deploy/k8s", r), "kustomization: resource")

dep = kinds["Deployment"][0]
spec = dep["spec"]
pod = spec["template"]["spec"]
pod_labels = spec["template"]["metadata"]["labels"]
check(spec.get("replicas") == 3, "k8s: Deployment replicas 3")
check(all(pod_labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()), "k8s: Deployment selector matches its pods")
c = pod["containers"][0]
port_names = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
check(port_names.get("http") == 8080, "k8s: container port http = 8080")
for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
    get = c.get(probe, {}).get("httpGet", {})
    check(get.get("path") == path and get.get("port") in ("http", 8080), f"k8s: {probe} GET {path}")
res = c.get("resources", {})
check(all(k in res.get("requests", {}) for k in ("cpu", "memory")) and all(k in res.get("limits", {}) for k in ("cpu", "memory")),
      "k8s: resource requests and limits (cpu, memory)")
csc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
check(csc.get("runAsNonRoot") is True or psc.get("runAsNonRoot") is True, "k8s: runAsNonRoot")
check(int(csc.get("runAsUser", psc.get("runAsUser", 0))) != 0, "k8s: runAsUser is not 0")
check(csc.get("readOnlyRootFilesystem") is True, "k8s: readOnlyRootFilesystem")
check(csc.get("allowPrivilegeEscalation") is False, "k8s: allowPrivilegeEscalation false")
check("ALL" in csc.get("capabilities", {}).get("drop", []), "k8s: all capabilities dropped")

cms = {d["metadata"]["name"]: d for d in kinds.get("ConfigMap", [])}
secrets = {d["metadata"]["name"]: d for d in kinds.get("Secret", [])}
def secret_keys(s):
    return set((s.get("data") or {}).keys()) | set((s.get("stringData") or {}).keys())
for ef in c.get("envFrom", []):
    if "configMapRef" in ef:
        check(ef["configMapRef"]["name"] in cms, f"k8s: envFrom ConfigMap {ef['configMapRef']['name']} exists")
    if "secretRef" in ef:
        check(ef["secretRef"]["name"] in secrets, f"k8s: envFrom Secret {ef['secretRef']['name']} exists")
env = {}
for e in c.get("env", []):
    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
    if ref:
        check(ref["name"] in secrets and ref["key"] in secret_keys(secrets[ref["name"]]),
              f"k8s: env {e['name']} from Secret {ref['name']} key {ref['key']} exists")
        env[e["name"]] = ("secret", ref["name"], ref["key"])
check("GATEWAY__REDIS__URL" in env, "k8s: GATEWAY__REDIS__URL comes from a Secret")
for name, cm in cms.items():
    for k in (cm.get("data") or {}):
        check(k.startswith("GATEWAY__") or k in ("LOG_FORMAT", "RUST_LOG"), f"k8s: ConfigMap {name} key {k} is a gateway variable")
    data = cm.get("data") or {}
    check(data.get("GATEWAY__SERVER__LISTEN", "").startswith("0.0.0.0:8080"), f"k8s: ConfigMap {name} listens on 0.0.0.0:8080")
vols = {v["name"]: v for v in pod.get("volumes", [])}
args = c.get("args", [])
cfg = args[args.index("--config") + 1] if "--config" in args else None
cfg_found = False
for vm in c.get("volumeMounts", []):
    v = vols.get(vm["name"])
    check(v is not None, f"k8s: volumeMount {vm['name']} has a volume")
    if v and "secret" in v:
        sname = v["secret"]["secretName"]
        check(sname in secrets, f"k8s: volume {vm['name']} Secret {sname} exists")
        for item in v["secret"].get("items", []):
            check(item["key"] in secret_keys(secrets.get(sname, {})), f"k8s: Secret {sname} has key {item['key']}")
            if cfg == os.path.join(vm["mountPath"], item["path"]):
                cfg_found = True
                with open(os.path.join(tmp, "k8s-gateway.toml"), "w") as f:
                    f.write((secrets[sname].get("stringData") or {})[item["key"]])
check(cfg_found, f"k8s: --config {cfg} is a mounted Secret key")
for sname, s in secrets.items():
    text = json.dumps(s.get("stringData") or {}) + json.dumps(s.get("data") or {})
    check("REPLACE" in text, f"k8s: Secret {sname} is an example with REPLACE placeholders")
    try:
        tomllib.loads((s.get("stringData") or {}).get("gateway.toml", ""))
        check(True, f"k8s: Secret {sname} gateway.toml parses as TOML")
    except Exception as e:  # noqa: BLE001
        check(False, f"k8s: Secret {sname} gateway.toml parses as TOML ({e})")
# Environment the gateway gets in the pod, for the start-up check below.
with open(os.path.join(tmp, "k8s.env"), "w") as f:
    for ef in c.get("envFrom", []):
        if "configMapRef" in ef:
            for k, v in (cms[ef["configMapRef"]["name"]].get("data") or {}).items():
                f.write(f"{k}={v}\n")
    for name, (_, sname, key) in env.items():
        value = (secrets[sname].get("stringData") or {})[key]
        if name == "GATEWAY__REDIS__URL":
            # Same scheme and credentials, but a local port nothing listens on: no DNS, no traffic.
            u = urllib.parse.urlsplit(value)
            userinfo = u.netloc.rpartition("@")[0]
            value = urllib.parse.urlunsplit((u.scheme, (userinfo + "@" if userinfo else "") + "127.0.0.1:1", u.path, u.query, u.fragment))
        f.write(f"{name}={value}\n")

svc = kinds["Service"][0]
check(all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "k8s: Service selects the gateway pods")
check(all(p.get("targetPort") in port_names or p.get("targetPort") in port_names.values() for p in svc["spec"]["ports"]),
      "k8s: Service targetPort is a container port")
hpa = kinds["HorizontalPodAutoscaler"][0]["spec"]
check(hpa["scaleTargetRef"].get("kind") == "Deployment" and hpa["scaleTargetRef"].get("name") == dep["metadata"]["name"],
      "k8s: HPA targets the Deployment")
check(hpa.get("minReplicas", 1) <= hpa.get("maxReplicas", 0) and hpa.get("minReplicas", 1) >= 2, "k8s: HPA min/max replicas sane")
pdb = kinds["PodDisruptionBudget"][0]["spec"]
check(all(pod_labels.get(k) == v for k, v in pdb["selector"]["matchLabels"].items()), "k8s: PDB selects the gateway pods")
check(isinstance(pdb.get("minAvailable"), int) and pdb["minAvailable"] < spec["replicas"], "k8s: PDB minAvailable leaves room to evict")
readme = open("deploy/k8s/README.md").read() if os.path.exists("deploy/k8s/README.md") else ""
check("redis.url" in readme and "Cluster" in readme, "k8s: README says the Redis Cluster URL goes in redis.url")

with open(os.path.join(tmp, "static.txt"), "w") as f:
    f.write(f"{checks} {len(failures)} {len([p for p in files if p.endswith(('.yml', '.yaml', '.json', '.toml'))])}\n")
if failures:
    print(f"\n{len(failures)} of {checks} checks failed")
    sys.exit(1)
PY
read -r static_checks static_failed parsed_files <"$TMP/static.txt"

# ------------------------------------------------------------------------------------- configs
if [ -n "${BIN_DIR:-}" ]; then
  bin=$BIN_DIR
else
  say "building the gateway (to validate the configurations with it)"
  cargo build -q --locked -p gateway-http
  bin="${CARGO_TARGET_DIR:-target}/debug"
fi

# starts SLUG NAME VAR=VALUE...: runs the gateway with the given environment until it logs that it listens (the
# configuration is valid), or exits (it is not). Port 0: any free port; Redis need not answer.
starts() {
  local log="$TMP/gateway-$1.log" name=$2
  shift 2
  env "$@" GATEWAY__SERVER__LISTEN=127.0.0.1:0 LOG_FORMAT=json "$bin/gateway" >"$log" 2>&1 &
  gw_pid=$!
  for _ in $(seq 1 100); do
    if grep -q 'gateway listening' "$log"; then
      kill "$gw_pid" 2>/dev/null || true
      wait "$gw_pid" 2>/dev/null || true
      gw_pid=""
      echo "  ok    the gateway starts with $name"
      return 0
    fi
    if ! kill -0 "$gw_pid" 2>/dev/null; then
      wait "$gw_pid" 2>/dev/null || true
      gw_pid=""
      tail -n 5 "$log" >&2
      die "the gateway refuses $name"
    fi
    sleep 0.1
  done
  die "the gateway neither started nor failed within 10s with $name"
}

say "the gateway validates the deploy configurations"
starts compose "deploy/config/compose.toml" GATEWAY_CONFIG=deploy/config/compose.toml GATEWAY__REDIS__URL=redis://127.0.0.1:1
k8s_env=()
while IFS= read -r line; do k8s_env+=("$line"); done <"$TMP/k8s.env"
starts k8s "deploy/k8s (Secret gateway.toml + ConfigMap + redis-url)" "${k8s_env[@]}" GATEWAY_CONFIG="$TMP/k8s-gateway.toml"

echo
echo "deploy-check summary"
echo "  files parsed            $parsed_files (YAML, JSON, TOML under deploy/)"
echo "  wiring checks           $static_checks, $static_failed failed"
echo "  gateway start-up        deploy/config/compose.toml and the k8s configuration accepted"
echo "  not checked here        building the image and running compose or the manifests (needs Docker / a cluster)"
echo "deploy-check: $((static_checks + 2)) passed, 0 failed"
