# Shortcuts for the usual commands; each is one line you can also type yourself.
.PHONY: build test run bench docker

build:
	go build -o regulars ./cmd/regulars

# The suite the CI runs (.ci/run); each test run starts its own PostgreSQL.
test:
	go test -race -count=1 ./...

# The server with demo data on http://localhost:8080, on a private cluster under ./data.
run: build
	./regulars serve --demo

# The till API figures of docs/benchmarks.md (about 4 minutes).
bench:
	scripts/bench-api.sh

docker:
	docker build -t regulars .
