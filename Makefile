# The two commands a newcomer needs: `make run` starts the whole system on an
# embedded default (aitbc devnet); `make test` runs every test (.ci/run calls it).
GO       ?= go
# go.mod asks for go1.26.10 (the first patch release without the standard
# library advisories govulncheck reports for go1.26.8 and go1.26.9). Debian's
# and the official Go tarball's go.env say GOTOOLCHAIN=local, which would
# stop an older go with "go.mod requires go >= 1.26.10"; auto lets it fetch
# go1.26.10 through the module proxy (checked against sum.golang.org) and
# keeps a local go that is already newer. An explicit other GOTOOLCHAIN wins.
ifeq ($(filter-out local,$(GOTOOLCHAIN)),)
export GOTOOLCHAIN := auto
endif
BIN      := bin
PKGS     := ./...
FUZZTIME ?= 10000x

.PHONY: all build run test unit cheat fuzz vet bench clean install release vulncheck

# Version stamping (internal/version): the Go build info has the commit only
# when go build sees the git checkout, not with -buildvcs=false (as CI sets)
# nor in a source tarball, so build and release stamp it. Override any of
# them: make release VERSION=v1.2.0
VERSION ?= $(shell git describe --tags --match 'v*' --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT  ?= $(shell c=$$(git rev-parse HEAD 2>/dev/null) && { git diff --quiet HEAD -- 2>/dev/null || c=$$c-dirty; echo $$c; })
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VPKG    := github.com/aitbc/aitbc/internal/version
LDFLAGS := -X $(VPKG).Version=$(VERSION) -X $(VPKG).Commit=$(COMMIT) -X $(VPKG).Date=$(DATE)

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/aitbc ./cmd/aitbc
	ln -sf aitbc $(BIN)/aitbc-cli

run: build
	$(BIN)/aitbc devnet

# test: vet, the whole suite (unit, integration, scenario) and a short fuzz
# pass over every decoder.
test: vet unit cheat fuzz vulncheck

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -count=1 -timeout 20m $(PKGS)

# cheat: the tests of the cheating miner, which exists only in binaries
# built with -tags aitbc_cheat (docs/VERIFICATION.md).
cheat:
	$(GO) test -count=1 -timeout 10m -tags aitbc_cheat -run 'Cheat|Substitute' ./internal/miner/backend ./internal/cli ./internal/devnet

fuzz:
	@./scripts/fuzz.sh $(FUZZTIME)

# vulncheck: govulncheck against the snapshot in scripts/vulndb (vuln.go.dev
# is not reachable here); VULNDB=https://vuln.go.dev to use the live one.
vulncheck:
	@./scripts/vulncheck.sh

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x $(PKGS)

clean:
	rm -rf $(BIN) $(DIST)

# install: the binary, the systemd units, their config files in
# /etc/aitbc (kept when present), the aitbc user (sysusers.d), the
# state and config directories (tmpfiles.d), the nginx site and the
# operations guide (docs/OPERATIONS.md). DESTDIR stages it (packaging);
# without DESTDIR on a systemd host it also creates the user and
# directories and reloads systemd. It enables and starts nothing.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
DOCDIR      ?= $(PREFIX)/share/doc/aitbc
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(SYSCONFDIR)/systemd/system
SYSUSERSDIR ?= $(SYSCONFDIR)/sysusers.d
TMPFILESDIR ?= $(SYSCONFDIR)/tmpfiles.d
NGINXDIR    ?= $(SYSCONFDIR)/nginx/sites-available

install: build
	install -D -m 0755 $(BIN)/aitbc $(DESTDIR)$(BINDIR)/aitbc
	ln -sf aitbc $(DESTDIR)$(BINDIR)/aitbc-cli
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	for u in deploy/systemd/*.service; do \
		sed -e 's#/usr/local/bin/aitbc#$(BINDIR)/aitbc#g' -e 's#/usr/local/share/doc/aitbc#$(DOCDIR)#g' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u) && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u) || exit 1; \
	done
	install -D -m 0644 deploy/sysusers.d/aitbc.conf $(DESTDIR)$(SYSUSERSDIR)/aitbc.conf
	install -D -m 0644 deploy/tmpfiles.d/aitbc.conf $(DESTDIR)$(TMPFILESDIR)/aitbc.conf
	install -D -m 0644 deploy/nginx/aitbc.conf $(DESTDIR)$(NGINXDIR)/aitbc.conf
	for e in deploy/env/*.env.example; do install -D -m 0644 $$e $(DESTDIR)$(SYSCONFDIR)/aitbc/$$(basename $$e) || exit 1; done
	# Config files (docs/CONFIG.md) the units name with --config: an
	# existing one is the operator's and is kept.
	for c in deploy/config/*.toml; do \
		t=$(DESTDIR)$(SYSCONFDIR)/aitbc/$$(basename $$c); \
		[ -e $$t ] || install -D -m 0644 $$c $$t || exit 1; \
	done
	install -D -m 0644 docs/OPERATIONS.md $(DESTDIR)$(DOCDIR)/OPERATIONS.md
	install -D -m 0644 LICENSE $(DESTDIR)$(DOCDIR)/LICENSE
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemd-sysusers $(SYSUSERSDIR)/aitbc.conf && \
		systemd-tmpfiles --create $(TMPFILESDIR)/aitbc.conf && \
		systemctl daemon-reload; \
	fi

# release: static binaries (CGO_ENABLED=0; the SQLite driver is pure Go)
# for each of PLATFORMS, stamped with VERSION, in DIST with SHA256SUMS.
DIST      ?= dist
PLATFORMS ?= linux/amd64 linux/arm64

release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" \
			-o $(DIST)/aitbc-$(VERSION)-$$os-$$arch ./cmd/aitbc || exit 1; \
	done
	cd $(DIST) && sha256sum aitbc-* > SHA256SUMS
