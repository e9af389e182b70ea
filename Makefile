# mrod — `make run` and `make test` do all set-up on a fresh Debian/Ubuntu machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# What the tests start for real: Postfix, BIND, Chromium; PostgreSQL for the benchmarks.
APT_PACKAGES := postfix postfix-sqlite postfix-pgsql bind9 bind9-utils bind9-dnsutils \
                chromium chromium-driver postgresql sqlite3 procps fail2ban

.PHONY: run test install system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/mrod init
	$(BIN)/mrod serve

# Installs the distribution packages the tests use when run as root (as CI is); otherwise
# says what is missing and the tests that need it are skipped (outside CI only).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "not root, not installing:$$missing"; exit 0; fi; \
	echo "installing:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	apt-get update -q && apt-get install -y -q $$missing

test: install system-deps
	$(BIN)/python -m pytest

bench: install system-deps
	$(BIN)/python -m bench.all

clean:
	rm -rf $(VENV) var build *.egg-info
