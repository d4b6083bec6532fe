#!/usr/bin/env python3
"""Prometheus scraping the compose stack, verified on this machine.

    tests/metrics/compose_scrape.py ENVDIR TIMEVAULT [--out DIR]

No container runtime here, so the compose stack's three timevault services
run as the real processes compose starts (`timevault capture`, `timevault
store`, `timevault serve`, with compose/timevault.toml and the commands of
compose/docker-compose.yml), against the private Postgres and Kafka of the
`testenv` fixture (ENVDIR/pg.env, ENVDIR/kafka.env), and Debian's real
Prometheus scrapes them with a config generated from
compose/prometheus/prometheus.yml: the same jobs, metrics paths, auth and
rule file; only the targets (compose service:port -> 127.0.0.1:free port),
the file paths (container -> the host file compose mounts) and the scrape
interval (1 s) are rewritten.

It checks, and fails on the first thing that does not hold:
  1. compose's wiring: every scrape target is a compose service running the
     timevault subcommand of its job, on the port that service really
     serves metrics on (--metrics-listen in its command, or api.listen of
     timevault.toml for serve), with the metrics path serve answers; the
     files prometheus.yml names are mounted into the prometheus service;
     Grafana's data source points at the prometheus service's port; the
     alert rules name only jobs that prometheus.yml scrapes;
  2. `promtool check config` on compose's prometheus.yml (syntax; then in
     full with its mounted paths resolved) and `promtool check rules` on
     compose/prometheus/alerts.yml;
  3. after a workload (writes, a full and an incremental backup, a plan, a
     full DR test, which the API's job, plan and RTO series need): every
     target up, every alert rule loaded, and every metric of every panel of
     compose/grafana/dashboards/timevault.json in Prometheus with samples
     from the job that must export it, and every panel's expression
     answering with data.
It prints what Prometheus saw.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPOSE = os.path.join(ROOT, "compose")


def die(msg):
    print(f"compose scrape: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def say(msg):
    print(f"compose scrape: {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_env(path):
    env = {}
    for line in open(path):
        m = re.match(r"\s*(?:export\s+)?([A-Z_]+)=(.*)$", line.strip())
        if m:
            env[m.group(1)] = m.group(2).strip("'\"")
    return env


def http(method, url, token=None, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return 0, str(e)


# ---- 1. compose's wiring ----------------------------------------------------

def host_port(addr):
    host, _, port = addr.rpartition(":")
    return host, int(port)


def metrics_listen_of(command):
    """The port of --metrics-listen HOST:PORT in a compose command list."""
    for i, arg in enumerate(command):
        if arg == "--metrics-listen" and i + 1 < len(command):
            return host_port(command[i + 1])[1]
        if arg.startswith("--metrics-listen="):
            return host_port(arg.split("=", 1)[1])[1]
    return None


def mount_map(service):
    """container path -> host path of a service's bind mounts."""
    out = {}
    for v in service.get("volumes", []):
        parts = v.split(":")
        src, dst = parts[0], parts[1]
        if src.startswith("."):
            out[dst] = os.path.normpath(os.path.join(COMPOSE, src))
    return out


def resolve_mounted(path, mounts):
    """The host file behind a container path, or None if nothing mounts it."""
    for dst, src in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
        if path == dst:
            return src
        if path.startswith(dst.rstrip("/") + "/"):
            return os.path.join(src, path[len(dst.rstrip("/")) + 1:])
    return None


# A scrape job -> the timevault subcommand whose process it must scrape.
JOB_COMMAND = {"capture": "capture", "store": "store", "api": "serve"}


def check_compose_wiring(compose, tv_toml, prom):
    services = compose["services"]
    api_port = host_port(tv_toml["api"]["listen"])[1]
    targets = {}  # job -> (service, port, subcommand)
    jobs = [j["job_name"] for j in prom["scrape_configs"]]
    if sorted(jobs) != sorted(JOB_COMMAND):
        die(f"prometheus.yml scrapes jobs {jobs}, expected {sorted(JOB_COMMAND)}")
    for job in prom["scrape_configs"]:
        name = job["job_name"]
        tlist = [t for sc in job["static_configs"] for t in sc["targets"]]
        if len(tlist) != 1:
            die(f"job {name}: expected one target, got {tlist}")
        service, port = host_port(tlist[0])
        if service not in services:
            die(f"job {name}: target {tlist[0]} is not a compose service")
        command = services[service].get("command", [])
        if not command or command[0] != JOB_COMMAND[name]:
            die(f"job {name}: service {service} runs {command}, not `timevault {JOB_COMMAND[name]}`")
        if name == "api":
            if port != api_port:
                die(f"job api: target port {port} but serve listens on api.listen {tv_toml['api']['listen']}")
            if job.get("metrics_path", "/metrics") != "/metrics":
                die(f"job api: metrics_path {job.get('metrics_path')} (serve answers /metrics)")
            if job.get("authorization", {}).get("type") != "Bearer":
                die("job api: serve's /metrics needs a bearer token (a viewer's)")
            published = [p for p in services[service].get("ports", []) if str(p).endswith(f":{api_port}")]
            if not published:
                die(f"service {service} does not publish the API port {api_port}")
        else:
            listen = metrics_listen_of(command)
            if listen != port:
                die(f"job {name}: target port {port} but service {service} has --metrics-listen port {listen}")
            if job.get("metrics_path", "/metrics") != "/metrics":
                die(f"job {name}: metrics_path {job.get('metrics_path')} (--metrics-listen serves /metrics)")
        targets[name] = (service, port, JOB_COMMAND[name])
    # The files prometheus.yml names are mounted into the prometheus service.
    mounts = mount_map(services["prometheus"])
    files = list(prom.get("rule_files", []))
    files += [j["authorization"]["credentials_file"] for j in prom["scrape_configs"]
              if "credentials_file" in j.get("authorization", {})]
    for f in files:
        host = resolve_mounted(f, mounts)
        if host is None:
            die(f"prometheus.yml names {f}, which no volume of the prometheus service mounts")
        if f in prom.get("rule_files", []) and not os.path.isfile(host):
            die(f"rule file {f} is mounted from {host}, which does not exist")
    # Grafana's data source is the prometheus service, on the port it listens on.
    ds = yaml.safe_load(open(os.path.join(COMPOSE, "grafana/provisioning/datasources/prometheus.yml")))
    url = urllib.parse.urlparse(ds["datasources"][0]["url"])
    prom_ports = [str(p).rsplit(":", 1)[1] for p in services["prometheus"].get("ports", [])]
    if url.hostname != "prometheus" or str(url.port) not in prom_ports:
        die(f"Grafana's data source {ds['datasources'][0]['url']} is not the prometheus service ({prom_ports})")
    # Every job an alert names is scraped.
    rules = yaml.safe_load(open(os.path.join(COMPOSE, "prometheus/alerts.yml")))
    for group in rules["groups"]:
        for rule in group["rules"]:
            for m in re.finditer(r'job=~?"([^"]+)"', rule["expr"]):
                for j in m.group(1).split("|"):
                    if j not in JOB_COMMAND:
                        die(f"alert {rule['alert']} names job {j}, which prometheus.yml does not scrape")
    say("compose wiring: " + ", ".join(f"job {j} -> {s}:{p} (timevault {c})" for j, (s, p, c) in targets.items()) +
        f"; {len(files)} mounted files; Grafana -> {ds['datasources'][0]['url']}")
    return targets, mounts


def promtool_checks(prom, mounts, out):
    def run(args):
        r = subprocess.run(["promtool"] + args, capture_output=True, text=True)
        if r.returncode != 0:
            die(f"promtool {' '.join(args)}:\n{r.stdout}{r.stderr}")
        return r.stdout.strip().splitlines()
    run(["check", "config", "--syntax-only", os.path.join(COMPOSE, "prometheus/prometheus.yml")])
    # In full: the same file with each mounted path replaced by the host file
    # compose mounts there (the token file is the operator's: a stand-in).
    resolved = json.loads(json.dumps(prom))
    resolved["rule_files"] = [resolve_mounted(f, mounts) for f in prom["rule_files"]]
    token = os.path.join(out, "promtool-api.token")
    open(token, "w").write("stand-in")
    for job in resolved["scrape_configs"]:
        if "credentials_file" in job.get("authorization", {}):
            job["authorization"]["credentials_file"] = token
    path = os.path.join(out, "prometheus-compose-resolved.yml")
    yaml.safe_dump(resolved, open(path, "w"))
    run(["check", "config", path])
    rules = run(["check", "rules", os.path.join(COMPOSE, "prometheus/alerts.yml")])
    say("promtool check config on compose's prometheus.yml: syntax SUCCESS, in full (mounted files resolved) "
        "SUCCESS; promtool check rules alerts.yml: " + rules[-1].strip())


# ---- the dashboard's metrics --------------------------------------------------

def dashboard_exprs():
    d = json.load(open(os.path.join(COMPOSE, "grafana/dashboards/timevault.json")))

    def walk(panels):
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))
    out = []
    for p in walk(d.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((p.get("title", "?"), t["expr"]))
    return out


def metric_names(expr):
    """timevault_* series an expression reads, histogram suffixes kept."""
    return sorted(set(re.findall(r"\btimevault_[a-z0-9_]+", expr)))


def exporter_of(metric):
    """The scrape job that must carry a metric (docs/observability.md)."""
    if metric.startswith("timevault_capture_"):
        return "capture"
    if metric.startswith("timevault_store_"):
        return "store"
    return "api"


# ---- the stack ------------------------------------------------------------------

class Stack:
    def __init__(self, out):
        self.out = out
        self.procs = {}

    def start(self, name, args, env):
        log = open(os.path.join(self.out, f"{name}.log"), "w")
        self.procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)

    def alive(self, name):
        return self.procs[name].poll() is None

    def check_alive(self):
        for name, p in self.procs.items():
            if p.poll() is not None:
                tail = open(os.path.join(self.out, f"{name}.log")).read()[-3000:]
                die(f"{name} exited with {p.returncode}:\n{tail}")

    def stop(self):
        for name, p in reversed(list(self.procs.items())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def psql(pgenv, db, sql):
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                       capture_output=True, text=True, env=pgenv)
    if r.returncode != 0:
        die(f"psql: {r.stderr}")
    return r.stdout.strip()


def wait_job(base, token, job, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        code, body = http("GET", f"{base}/v1/jobs/{job}", token)
        if code == 200:
            j = json.loads(body)
            if j["state"] in ("succeeded", "failed"):
                return j
        time.sleep(0.3)
    die(f"job {job} did not finish in {timeout} s")


def post_job(base, token, path, body):
    code, text = http("POST", base + path, token, body)
    if code != 202:
        die(f"POST {path} {body}: {code} {text}")
    return wait_job(base, token, json.loads(text)["job_id"])


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        die("usage: compose_scrape.py ENVDIR TIMEVAULT [--out DIR]")
    envdir, tv = args[0], os.path.abspath(args[1])
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), "timevault-compose-scrape")
    if "--out" in args:
        out = os.path.abspath(args[args.index("--out") + 1])
    for tool in ("prometheus", "promtool", "psql"):
        if not shutil.which(tool):
            die(f"{tool} is not installed: run scripts/setup")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)

    compose = yaml.safe_load(open(os.path.join(COMPOSE, "docker-compose.yml")))
    tv_toml_text = open(os.path.join(COMPOSE, "timevault.toml")).read()
    tv_toml = tomllib.loads(tv_toml_text)
    prom = yaml.safe_load(open(os.path.join(COMPOSE, "prometheus/prometheus.yml")))
    targets, mounts = check_compose_wiring(compose, tv_toml, prom)
    promtool_checks(prom, mounts, out)

    env = load_env(os.path.join(envdir, "pg.env")) | load_env(os.path.join(envdir, "kafka.env"))
    pgenv = os.environ | {k: env[k] for k in ("PGHOST", "PGPORT", "PGUSER")}
    name = f"tvscrape_{os.getpid()}"
    psql(pgenv, "postgres", f"CREATE DATABASE {name}")
    stack = Stack(out)
    prom_proc = None
    try:
        psql(pgenv, name, """
            CREATE TABLE accounts (tenant_id text NOT NULL, id int NOT NULL, balance int NOT NULL,
                                   PRIMARY KEY (tenant_id, id));
            INSERT INTO accounts SELECT t, i, i * 10 FROM unnest(ARRAY['acme', 'globex']) t,
                                                          generate_series(1, 50) i;""")
        # compose/timevault.toml as compose mounts it, plus two tokens of the
        # test's (the compose file's only token matches nothing); what names
        # compose's hosts and volume paths is overridden the way compose's
        # services may (TIMEVAULT_<SECTION>_<KEY>).
        tokens = {"viewer": f"scrape-viewer-{os.urandom(8).hex()}", "admin": f"scrape-admin-{os.urandom(8).hex()}"}
        extra = "".join(f'\n[[api.tokens]]\nname = "scrape-{who}"\nsha256 = "{hashlib.sha256(t.encode()).hexdigest()}"\n'
                        f'role = "{who}"\ntenants = ["*"]\n' for who, t in tokens.items())
        cfg = os.path.join(out, "timevault.toml")
        open(cfg, "w").write(tv_toml_text + extra)
        data = os.path.join(out, "data")
        os.makedirs(data)
        for key in ("master.key", "signing.key"):  # what compose's keygen writes
            with open(os.path.join(data, key), "wb") as f:
                f.write(os.urandom(32))
            os.chmod(os.path.join(data, key), 0o600)
        api_port = free_port()
        tv_env = os.environ | {
            "TIMEVAULT_CONFIG": cfg,
            "TIMEVAULT_POSTGRES_CONNINFO": f"host={env['PGHOST']} port={env['PGPORT']} user={env['PGUSER']} dbname={name}",
            "TIMEVAULT_POSTGRES_SLOT": name, "TIMEVAULT_POSTGRES_PUBLICATION": name,
            "TIMEVAULT_KAFKA_BOOTSTRAP": env["KAFKA_BOOTSTRAP"], "TIMEVAULT_KAFKA_TOPIC_PREFIX": name,
            "TIMEVAULT_KAFKA_CONSUMER_GROUP": f"{name}-store", "TIMEVAULT_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "TIMEVAULT_STORE_PATH": f"{data}/store", "TIMEVAULT_STORE_KEY_FILE": f"{data}/master.key",
            "TIMEVAULT_SIGNING_KEY_FILE": f"{data}/signing.key",
            "TIMEVAULT_REPLAY_BACKUP_DIR": f"{data}/backups", "TIMEVAULT_REPLAY_SNAPSHOT_DIR": f"{data}/snapshots",
            "TIMEVAULT_API_LISTEN": f"127.0.0.1:{api_port}", "TIMEVAULT_API_STATE_DIR": f"{data}/api",
        }
        # Each service's compose command, with its metrics port made free.
        ports = {"api": api_port}
        for job, (service, _, _) in targets.items():
            command = list(compose["services"][service]["command"])
            if job != "api":
                ports[job] = free_port()
                i = command.index("--metrics-listen")
                command[i + 1] = f"127.0.0.1:{ports[job]}"
            if service == "serve":  # serve opens the store as a secondary of the one store creates
                for _ in range(600):
                    if os.path.exists(f"{data}/store/CURRENT"):
                        break
                    stack.check_alive()
                    time.sleep(0.2)
            stack.start(service, [tv] + command, tv_env)
        base = f"http://127.0.0.1:{api_port}"
        deadline = time.time() + 180
        while time.time() < deadline:
            stack.check_alive()
            if http("GET", base + "/readyz")[0] == 200:
                break
            time.sleep(0.3)
        else:
            die("serve not ready (GET /readyz) after 180 s")
        say(f"capture, store and serve run; metrics on {ports}")

        # Prometheus, with compose's config rewritten to this machine.
        token_file = os.path.join(out, "api.token")
        open(token_file, "w").write(tokens["viewer"])
        cfg_prom = json.loads(json.dumps(prom))
        cfg_prom["global"]["scrape_interval"] = "1s"
        cfg_prom["global"]["evaluation_interval"] = "1s"
        cfg_prom["rule_files"] = [resolve_mounted(f, mounts) for f in prom["rule_files"]]
        for job in cfg_prom["scrape_configs"]:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
            if "credentials_file" in job.get("authorization", {}):
                job["authorization"]["credentials_file"] = token_file
        prom_cfg = os.path.join(out, "prometheus.yml")
        yaml.safe_dump(cfg_prom, open(prom_cfg, "w"))
        prom_port = free_port()
        prom_log = open(os.path.join(out, "prometheus.log"), "w")
        prom_proc = subprocess.Popen(
            ["prometheus", f"--config.file={prom_cfg}", f"--storage.tsdb.path={out}/prometheus-data",
             f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=prom_log, stderr=subprocess.STDOUT,
            start_new_session=True)
        papi = f"http://127.0.0.1:{prom_port}/api/v1"

        def query(q):
            code, text = http("GET", f"{papi}/query?" + urllib.parse.urlencode({"query": q}))
            if code != 200:
                return None
            return json.loads(text)["data"]["result"]

        # The workload runs while Prometheus scrapes, so rates and the job
        # histogram's increase have samples on both sides of it.
        for _ in range(300):
            res = query('up{job="api"}')
            if res and res[0]["value"][1] == "1":
                break
            time.sleep(0.2)
        else:
            die("Prometheus never scraped serve's /metrics")
        # A workload the API's series need: changes, backups, a plan, a DR test.
        psql(pgenv, name, "UPDATE accounts SET balance = balance + 1 WHERE id <= 20")
        op = tokens["admin"]
        full = post_job(base, op, "/v1/backups", {"tenant": "acme", "type": "full"})
        if full["state"] != "succeeded":
            die(f"full backup: {full}")
        psql(pgenv, name, "UPDATE accounts SET balance = balance + 1 WHERE id <= 10")
        time.sleep(2)
        inc = post_job(base, op, "/v1/backups", {"tenant": "acme", "type": "incremental", "base": full["result"]["id"]})
        if inc["state"] != "succeeded":
            die(f"incremental backup: {inc}")
        code, text = http("POST", base + "/v1/plans", op, {
            "name": "scrape", "tenant": "acme", "rto_minutes": 30, "rpo_minutes": 60,
            "full_backup_every": 1440, "incremental_every": 60, "retention_days": 7})
        if code not in (200, 201):
            die(f"POST /v1/plans: {code} {text}")
        plan = json.loads(text)["id"]
        dr = post_job(base, op, f"/v1/plans/{plan}/tests", {"level": "full"})
        if dr["state"] != "succeeded":
            die(f"DR test: {dr}")

        exprs = dashboard_exprs()
        metrics = sorted({m for _, e in exprs for m in metric_names(e)})
        rule_names = [r["alert"] for g in yaml.safe_load(open(os.path.join(COMPOSE, "prometheus/alerts.yml")))["groups"]
                      for r in g["rules"]]
        seen, missing = {}, []
        deadline = time.time() + 120
        while time.time() < deadline:
            stack.check_alive()
            missing = []
            code, text = http("GET", f"{papi}/targets")
            active = json.loads(text)["data"]["activeTargets"] if code == 200 else []
            up = {t["labels"]["job"]: t["health"] for t in active}
            if sorted(up) != sorted(JOB_COMMAND) or set(up.values()) != {"up"}:
                missing.append(f"targets {up}")
            code, text = http("GET", f"{papi}/rules")
            loaded = [r["name"] for g in json.loads(text)["data"]["groups"] for r in g["rules"]] if code == 200 else []
            if sorted(loaded) != sorted(rule_names):
                missing.append(f"rules {loaded}")
            for m in metrics:
                res = query(f"count by (job) ({{__name__=~\"{m}\"}})") or []
                jobs = {r["metric"].get("job"): int(r["value"][1]) for r in res}
                if exporter_of(m) not in jobs:
                    missing.append(f"{m} from job {exporter_of(m)} (seen in {jobs})")
                seen[m] = jobs
            for title, e in exprs:
                values = [r["value"][1] for r in (query(e) or [])]
                if not [v for v in values if v not in ("NaN", "+Inf", "-Inf")]:
                    missing.append(f"panel '{title}': {e} has no data ({values})")
            if not missing:
                break
            time.sleep(1)
        if missing:
            die("Prometheus did not see:\n  " + "\n  ".join(missing))
        say(f"Prometheus 127.0.0.1:{prom_port}: targets " +
            ", ".join(f"{t['labels']['job']}={t['health']} ({t['scrapeUrl']})" for t in active))
        say(f"{len(loaded)} alert rules loaded: {', '.join(sorted(loaded))}")
        say(f"{len(exprs)} panel expressions answer with data; {len(metrics)} dashboard metrics, series per job:")
        for m in metrics:
            sample = query(m if not m.endswith("_bucket") else f"sum({m})")
            value = sample[0]["value"][1] if sample else "?"
            say(f"  {m}: {seen[m]} (e.g. {value})")
        firing = query("ALERTS") or []
        say("alerts firing or pending: " + (", ".join(f"{a['metric']['alertname']}={a['metric']['alertstate']}"
                                                      for a in firing) or "none"))
    finally:
        if prom_proc is not None and prom_proc.poll() is None:
            prom_proc.terminate()
            prom_proc.wait()
        stack.stop()
        psql_q = ["psql", "-X", "-q", "-d", "postgres", "-c"]
        subprocess.run(psql_q + [f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                 f"WHERE slot_name = '{name}'"], env=pgenv, capture_output=True)
        subprocess.run(psql_q + [f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], env=pgenv, capture_output=True)
    say("passed")


if __name__ == "__main__":
    main()
