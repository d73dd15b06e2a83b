.PHONY: run test ci build bench loadtest fmt

run: ## start Latch on the embedded default (SQLite + log mailer)
	go run ./cmd/latch serve

test: ## the test command (CI runs it with -race)
	go test ./...

ci:
	bash .ci/run

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$$(git describe --tags --always 2>/dev/null || echo dev)" -o bin/latch ./cmd/latch

bench: ## the Go micro-benchmarks; the load generator is cmd/latch-bench (make loadtest)
	go test -run '^$$' -bench . ./...

loadtest: ## every latch-bench scenario against a fresh Postgres database, plus pgbench (scripts/bench.sh)
	bash scripts/bench.sh

fmt:
	gofmt -w $$(git ls-files '*.go')
