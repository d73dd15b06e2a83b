.PHONY: run test ci build bench fmt

run: ## start Latch on the embedded default (SQLite + log mailer)
	go run ./cmd/latch serve

test: ## the test command (CI runs it with -race)
	go test ./...

ci:
	bash .ci/run

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$$(git describe --tags --always 2>/dev/null || echo dev)" -o bin/latch ./cmd/latch

bench:
	go test -run '^$$' -bench . ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
