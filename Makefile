# The two commands a newcomer needs: `make run` starts the whole system on an
# embedded default (aitbc devnet); `make test` runs every test (.ci/run calls it).
GO       ?= go
BIN      := bin
PKGS     := ./...
FUZZTIME ?= 10000x

.PHONY: all build run test unit fuzz vet bench clean vulncheck

all: build

build:
	$(GO) build -o $(BIN)/aitbc ./cmd/aitbc
	ln -sf aitbc $(BIN)/aitbc-cli

run: build
	$(BIN)/aitbc devnet

# test: vet, the whole suite (unit, integration, scenario) and a short fuzz
# pass over every decoder.
test: vet unit fuzz vulncheck

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -count=1 -timeout 20m $(PKGS)

fuzz:
	@./scripts/fuzz.sh $(FUZZTIME)

# vulncheck: govulncheck against the snapshot in scripts/vulndb (vuln.go.dev
# is not reachable here); VULNDB=https://vuln.go.dev to use the live one.
vulncheck:
	@./scripts/vulncheck.sh

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x $(PKGS)

clean:
	rm -rf $(BIN)
