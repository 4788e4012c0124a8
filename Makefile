# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test check bench deps clean dashboards bench-agent bench-scale faults soak

# Debian packages the suite and the demo use: tests talk to a real broker, Prometheus and
# Alertmanager, never to mocks. Installed only when root.
DEBS := mosquitto nats-server prometheus prometheus-alertmanager chromium
BINS := mosquitto nats-server prometheus promtool prometheus-alertmanager amtool chromium

deps:
	@missing=""; for b in $(BINS); do command -v $$b >/dev/null 2>&1 || [ -x /usr/sbin/$$b ] || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages: $(DEBS)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBS) >/dev/null; \
	  else echo "missing:$$missing (install the Debian packages: $(DEBS))"; fi; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,demo]'
	touch $(STAMP)

demo: deps $(STAMP)
	$(VENV)/bin/branchwatch demo

# Four workers on two cores: the integration tests mostly wait on real brokers and servers.
test: deps $(STAMP)
	$(PY) -m pytest -q -n 4 --dist loadfile

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Rebuild the committed Grafana boards (dashboards/json/); a unit test fails if they drift.
dashboards: $(STAMP)
	$(VENV)/bin/branchwatch grafana build --out dashboards/json

# Collector, agent and floor loop benchmarks (docs/benchmarks.md); ~25 minutes. Each one
# exits non-zero when it misses a target: all run, and make fails after them if one did.
BENCHES := "bench" "bench.ingest_paths" \
	"bench.ingest_paths --batches --consumers paho,collector-paho,collector" \
	"bench.latency" "bench.region_scrape" "bench.agent_bench" "bench.floor_loop"
bench: deps $(STAMP)
	@status=0; for bench in $(BENCHES); do \
		echo "== python -m $$bench"; $(PY) -m $$bench || status=1; \
	done; exit $$status

# Agent RSS (4 devices), idle CPU and backlog drain rate against a real Mosquitto.
bench-agent: deps $(STAMP)
	$(PY) -m bench.agent_bench

# The bank at scale (docs/benchmarks.md, "Bank scale"): a 3-node NATS cluster, a collector
# per region, regional and global Prometheus, the simulator's load, a node killed mid-run;
# ~5 minutes, exit 1 unless every collector's totals are exact. SCALE_ARGS="--find" finds
# the largest load this machine keeps up with; `python -m bench.scale --help` has the rest.
bench-scale: deps $(STAMP)
	$(PY) -m bench.scale $(SCALE_ARGS)

# Every fault at full size against real processes (docs/reliability.md); ~15 minutes.
# Their quick variants run in `make test`. FAULTS_OUT=FILE also writes the report there.
faults: deps $(STAMP)
	$(PY) -m tests.faults $(if $(FAULTS_OUT),--out $(FAULTS_OUT))

# 30 minutes at 10x a busy branch's rate across 200 branches, in short business days: zero
# loss, and the collector's RSS at the last day's start <= 5 % above day 2's (docs/reliability.md).
# Not in CI. SOAK_MINUTES=2 for a short check (too short for days: judges only the loss).
SOAK_MINUTES ?= 30
soak: deps $(STAMP)
	$(PY) -m tests.faults.soak --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: alerts
alerts: $(STAMP)  # regenerate alerts/rules/ from alerts/config.py
	$(PY) -m alerts.build
