# mrod — `make run` and `make test` do all set-up on a fresh Debian/Ubuntu machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# What the tests start for real: Postfix, BIND, Chromium, PostgreSQL, OpenLDAP and MariaDB (a
# primary's directory and mail database), and the checkers of generated config (rspamd, SpamAssassin).
APT_PACKAGES := postfix postfix-sqlite postfix-pgsql bind9 bind9-utils bind9-dnsutils \
                chromium chromium-driver postgresql sqlite3 procps fail2ban python3-venv \
                slapd ldap-utils mariadb-server rspamd spamassassin openssl
# What `make deb` builds with: Debian's dpkg-deb and python3 (the package's venv is made by
# /usr/bin/python3, so it runs on the Debian it is built on), and git (the version).
DEB_BUILD_PACKAGES := dpkg python3-venv git
# The .deb's Python dependencies, pinned with their hashes (pip-compile --generate-hashes):
# changed only on purpose, by `make lock` (after editing pyproject's dependencies: adds and drops
# what changed, keeps every other pin) or `make lock-upgrade` (the newest of everything).
LOCK := packaging/deb/requirements.lock

.PHONY: run test lint install install-test system-deps deb lock lock-upgrade bench clean

# A checkout never touches an installed service (its /etc/mrod/mrod.toml, its database, its
# ports): `make run` names ./mrod.toml explicitly (the first run writes it from
# contrib/checkout.toml: data in var/, ports of its own), a checkout's mrod never discovers
# /etc/mrod/mrod.toml by itself (mrod/infra/config/loader.py), and no MROD_* variable of the
# caller's shell (MROD_CONFIG, MROD_DATABASE_PATH…) reaches a recipe. MROD_KEEP_POSTFIX is a
# test option (tests/harness/postfix.py), not a setting.
unexport $(filter-out MROD_KEEP_POSTFIX,$(filter MROD_%,$(.VARIABLES)))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# `make run` installs mrod alone; only `make test` adds the test extras (pytest, Playwright…).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(STAMP)-test: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)-test

install: $(STAMP)

install-test: $(STAMP)-test

mrod.toml:
	cp contrib/checkout.toml $@

run: install mrod.toml
	$(BIN)/mrod --config mrod.toml init
	$(BIN)/mrod --config mrod.toml serve

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

# The suite on TEST_WORKERS pytest-xdist workers (--dist loadgroup comes from pyproject's
# addopts): the Postfix, BIND, PostgreSQL and Chromium tests mostly wait on those processes, so
# more workers than cores pays. Tests that must not run side by side share an xdist_group.
TEST_WORKERS ?= 4

test: lint system-deps
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# Types, lint and dead code. mypy must see lookupd/ and admin/ as the mrod.lookupd and
# mrod.admin they are installed as (pyproject package-dir), and no folder here spells that, so it
# runs in build/typecheck/, a tree of links laid out like the installed package; its paths are
# turned back into the repository's in what it prints.
TYPECHECK := build/typecheck

lint: install-test
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/mrod
	ln -s $(CURDIR)/mrod/* $(TYPECHECK)/mrod/
	ln -s $(CURDIR)/lookupd $(TYPECHECK)/mrod/lookupd
	ln -s $(CURDIR)/admin $(TYPECHECK)/mrod/admin
	ln -s $(CURDIR)/tests $(CURDIR)/bench $(TYPECHECK)/
	@status=0; $(BIN)/ruff check . || status=1; $(BIN)/vulture || status=1; \
	(cd $(TYPECHECK) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml) >$(TYPECHECK)/mypy.out || status=1; \
	sed -e 's,^mrod/lookupd/,lookupd/,' -e 's,^mrod/admin/,admin/,' $(TYPECHECK)/mypy.out; exit $$status

# dist/mrod_VERSION_ARCH.deb (+ the wheel and sdist): `apt install ./dist/mrod_*.deb`. The version
# comes from pyproject's [tool.mrod] release and git (packaging/backend/mrod_build.py).
deb:
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES="$(DEB_BUILD_PACKAGES)"
	rm -f dist/mrod_*.deb dist/mrod-*.whl dist/mrod-*.tar.gz
	packaging/deb/build.sh . dist

# Resolved by Debian's python3, the one the package's venv runs on.
LOCK_TOOLS := build/lock-tools
$(LOCK_TOOLS)/bin/pip-compile:
	/usr/bin/python3 -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install --quiet pip-tools

lock: $(LOCK_TOOLS)/bin/pip-compile
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
	    --output-file $(LOCK) pyproject.toml

lock-upgrade: $(LOCK_TOOLS)/bin/pip-compile
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile --quiet --upgrade --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
	    --output-file $(LOCK) pyproject.toml

bench: install-test system-deps
	$(BIN)/python -m bench.all

clean:
	rm -rf $(VENV) var build dist *.egg-info mrod/_version.py
