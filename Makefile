# tokenvault: `make demo` and `make test` on a fresh Debian machine with Swift.
SWIFT   ?= swift
PREFIX  ?= /usr/local
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the build and the tests need: libsodium and SQLite headers; libcurl's header for the HTTP transport
# (libcurl itself, libcurl4, is not linked: opened when a request is first made); tmux drives the passphrase prompt
# in the end-to-end tests (and the fish and zsh completions, typed at a terminal), and zsh is one of the shells
# `env` output is checked in. python3 (any, not
# necessarily Debian's) is the browser stand-in of the demo and the end-to-end tests; python3-dotenv (read through
# /usr/bin/python3) checks that `env --format dotenv` reads back byte for byte; chromium (headless) is the real
# browser of the authorize tests; curl plays another local user's program (through setpriv) in the attack tests.
# libpq-dev gives the PostgreSQL vault's header (libpq itself is loaded at run time); postgresql's initdb and
# pg_ctl make the tests' throwaway server (TokenVaultLab's PostgresServer). prometheus gives promtool, which checks
# `list --format prometheus` (`promtool check metrics`) and the alerting rules in contrib/prometheus (`promtool
# check rules`, `promtool test rules`). The package checks (`make package-check`, the end of `make test`): dpkg-dev
# (dpkg-shlibdeps computes Depends), lintian, man-db (man renders the generated pages), systemd (systemd-analyze
# verifies the user units).
DEB_PACKAGES := libsodium-dev libsqlite3-dev libcurl4-openssl-dev pkg-config tmux zsh fish python3-dotenv chromium curl \
	postgresql libpq-dev prometheus dpkg-dev lintian man-db systemd
# `make package-test` only: makes a clean Debian 12 root to install the package into.
PACKAGE_TEST_PACKAGES := mmdebstrap

# The version is written once, in VERSION; the package's Debian revision is the packaging's own.
VERSION      := $(shell tr -d ' \n' < VERSION)
DEB_REVISION ?= 1
DIST         ?= dist
DEB          := $(DIST)/tokenvault_$(VERSION)-$(DEB_REVISION)_amd64.deb
TARBALL      := $(DIST)/tokenvault-$(VERSION)-linux-x86_64.tar.gz
MAN_DIR      := .build/man
# The man pages' date: the version's entry in CHANGELOG.md (not today), so that the same sources give the same pages.
RELEASE_DATE := $(shell sed -n 's/^\#\# \[$(VERSION)\] - \([0-9-]*\)$$/\1/p' CHANGELOG.md)

.PHONY: all deps build release test lint format leftovers faults demo install uninstall clean release-tokenvault man deb \
	tarball package-check package-test

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v python3 >/dev/null 2>&1 || missing="$$missing python3"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product tokenvault --static-swift-stdlib
	$(SWIFT) build -c release --product provider-sandbox

# The mark of this run (TokenVaultLab's TestRun): the tests put it in the names of the directories they make, so
# that the checks below for processes left behind look at this run's alone, not at an agent or a PostgreSQL server
# another user or other work on the machine started. Made once per make invocation; `make leftovers TEST_RUN=...`
# runs the checks for a given run.
ifndef TEST_RUN
TEST_RUN := tvr$(shell od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
endif

test: deps
	@$(MAKE) --no-print-directory lint
	$(SWIFT) build
	@# In two runs: the tests of the layers below the binary first, then the tests of the built binary. A binary
	@# test waits for its child on a thread of the cooperative pool (two threads on a 2-core machine), and hundreds
	@# of them at once left the in-process servers and timers of the lower layers' tests unanswered for 20 s.
	TOKENVAULT_TEST_RUN=$(TEST_RUN) $(SWIFT) test --skip EndToEndTests
	TOKENVAULT_TEST_RUN=$(TEST_RUN) $(SWIFT) test --skip-build --filter EndToEndTests
	@$(MAKE) --no-print-directory leftovers TEST_RUN=$(TEST_RUN)
	.build/debug/tokenvault-faults --short --tokenvault .build/debug/tokenvault
	bash Tests/Scripts/demo.sh .build/debug
	$(MAKE) package-check

# The checks `make test` ends with: no tmux server, agent or PostgreSQL server its tests started is left running.
# (The tmux servers are the tests' own by their socket name and their working directory, this checkout.)
leftovers:
	@# Every test ends the tmux server it starts, also when it fails: none may outlive the run.
	@# (A server or client ended at the very end of the run may take a while to go on a loaded machine: look for
	@# up to 60 s, and name what is left. The pattern is written [t]mux so that it does not match this shell itself.)
	@for try in $$(seq 1 61); do left=""; \
	  for p in $$(pgrep -f '[t]mux -L tokenvault-test-' || true); do \
	    [ "$$(readlink /proc/$$p/cwd 2>/dev/null)" = "$(CURDIR)" ] && left="$$left $$p"; done; \
	  [ -z "$$left" ] && break; \
	  if [ $$try = 61 ]; then echo "tmux processes the tests left running:"; \
	    for p in $$left; do tr '\0' ' ' < /proc/$$p/cmdline | cut -c1-300; echo; done; exit 1; fi; \
	  sleep 1; done
	@# No agent a test started may outlive the run either (each one's vault is gone with its workspace, and an
	@# agent whose vault file disappears exits within a second; look for up to 30 s). This run's agents are those whose
	@# vault path (a file, or a PostgreSQL location's host= directory) has the run's mark in it: also an agent a test
	@# started as another user, whose command line is all that can be read of it.
	@for try in $$(seq 1 31); do left=$$(pgrep -f '[t]okenvault agent run --vault [^ ]*-$(TEST_RUN)-' || true); \
	  [ -z "$$left" ] && break; \
	  if [ $$try = 31 ]; then echo "agents the tests left running: $$left"; exit 1; fi; sleep 1; done
	@# Nor a throwaway PostgreSQL server (its postmaster runs 'postgres -D $$TMPDIR/tokenvault-pg-RUN-XXXX/data';
	@# each is stopped by its test process, at its exit, or by its watchdog a second after the process is gone).
	@for try in $$(seq 1 31); do left=$$(pgrep -f '[p]ostgres -D [^ ]*/tokenvault-pg-$(TEST_RUN)-[0-9a-f]*/data' || true); \
	  [ -z "$$left" ] && break; \
	  if [ $$try = 31 ]; then echo "PostgreSQL servers the tests left running:"; \
	    for p in $$left; do tr '\0' ' ' < /proc/$$p/cmdline | cut -c1-300; echo; done; exit 1; fi; sleep 1; done

# The toolchain's `swift format` with .swift-format (4 spaces, 120 columns): the sources must read as it writes
# them. `make lint` formats a copy and compares (nothing here changes; `make test` runs it first); `make format`
# rewrites the sources in place.
FORMATTED := Package.swift Sources Tests Plugins
lint:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cp -r $(FORMATTED) .swift-format "$$tmp"/ && \
	  cd "$$tmp" && $(SWIFT) format format --in-place --recursive --parallel --configuration .swift-format $(FORMATTED) && \
	  cd "$(CURDIR)" && for f in $(FORMATTED); do diff -ru --no-dereference "$$f" "$$tmp/$$f" || \
	    { echo "make lint: not as swift format writes it; run 'make format'"; exit 1; }; done

format:
	$(SWIFT) format format --in-place --recursive --parallel --configuration .swift-format $(FORMATTED)

# The fault-injection suite in full: 200 kills per mode, every bit of every sealed value, a stall past the
# 30 s HTTP timeout, the vault's store failing under strict rotation (about 35 minutes on a 2-core machine, 5 of
# them a PostgreSQL server stopped on purpose). `make test` runs its short form (about 3 minutes, 45 s of them the
# store part).
faults: deps
	$(SWIFT) build
	.build/debug/tokenvault-faults --full --tokenvault .build/debug/tokenvault

demo: deps
	$(SWIFT) build
	bash Tests/Scripts/demo.sh .build/debug

# The shipped binary alone (`release` also builds provider-sandbox).
release-tokenvault: deps
	$(SWIFT) build -c release --product tokenvault --static-swift-stdlib

# Man pages from the argument parser: tokenvault(1) and one page per subcommand (tokenvault-refresh-all(1), ...),
# written by swift-argument-parser's generate-manual from the release binary's own parser, into $(MAN_DIR).
# `swift package generate-manual --help` builds the plugin's tool (about 3 min the first time) without the plugin's
# own build of every product (the plugin would build them all again, and in release it would relink
# .build/release/tokenvault without --static-swift-stdlib); packaging/man-pages.sh runs it and names the pages.
man: release-tokenvault
	$(SWIFT) package generate-manual --help >/dev/null
	bash packaging/man-pages.sh "$$($(SWIFT) build --show-bin-path)/generate-manual-tool" .build/release/tokenvault \
	  $(RELEASE_DATE) $(MAN_DIR)

# The Debian package and the tarball (packaging/README.md): the release binary, stripped, with the man pages,
# completions, systemd user units, copyright, changelogs and the Prometheus rules.
deb: release-tokenvault man
	bash packaging/build-package.sh deb .build/release/tokenvault $(MAN_DIR) $(DIST)

tarball: release-tokenvault man
	bash packaging/build-package.sh tarball .build/release/tokenvault $(MAN_DIR) $(DIST)

# The cheap checks (`make test` ends with them): lintian, the package unpacked with dpkg -x and run, man pages and
# completions, systemd-analyze verify, promtool check/test rules.
package-check: deb tarball
	bash packaging/package-check.sh $(DEB) $(TARBALL)

# The full proof (not part of make test; its time is in packaging/README.md): a clean Debian 12 root from the
# mirror apt uses here, the package installed there with apt, and tokenvault used in it without Swift.
package-test: deb
	@missing=""; for p in $(PACKAGE_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi
	$(SUDO) bash packaging/package-test.sh $(DEB)

install: release
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 .build/release/tokenvault $(DESTDIR)$(PREFIX)/bin/tokenvault

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/tokenvault

clean:
	rm -rf .build $(DIST)

# Benchmarks (targets and figures in BENCHMARKS.md): release build, then the driver runs the built tokenvault
# against an in-process provider-sandbox, prints a table and rewrites the measured part of BENCHMARKS.md. Needs
# python3 with venv and pip (the authlib + httpx comparison is installed into .build/bench-venv) and cc for the
# crypto_pwhash floor.
.PHONY: bench
bench: deps
	$(SWIFT) build -c release --product tokenvault --static-swift-stdlib
	$(SWIFT) build -c release --product tokenvault-bench
	.build/release/tokenvault-bench
