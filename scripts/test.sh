#!/usr/bin/env bash
# The test command: installs and starts the servers the tests need (scripts/services.sh), checks
# formatting and vet, then runs every package's tests with the race detector, on every store.
# Usage: scripts/test.sh [go test flags/packages]   (default: ./...)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== services (S3: versitygw, GCS: fake-gcs-server, Azure: Azurite, RabbitMQ)"
scripts/services.sh start
eval "$(scripts/services.sh env)"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go mod tidy check"
cp go.mod /tmp/lake-go.mod.bak; cp go.sum /tmp/lake-go.sum.bak
go mod tidy
if ! cmp -s go.mod /tmp/lake-go.mod.bak || ! cmp -s go.sum /tmp/lake-go.sum.bak; then
  echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; git --no-pager diff --stat go.mod go.sum || true; exit 1
fi

echo "== go test -race"
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
go test -race -timeout 40m -count=1 "${pkgs[@]}"

if [ $# -eq 0 ]; then
  echo "== numeric quality checks (built without -race, which slows them tenfold)"
  go test -timeout 20m -count=1 -run 'Quality|SimilarItemsShareCategory|WarmStart|LSHRecall|Surge|Detect' ./jobs/...
fi

if [ -f integration/go.mod ] && [ $# -eq 0 ]; then
  echo "== integration (test-only module: DuckDB, multi-process writers)"
  (cd integration && go test -race -timeout 30m -count=1 ./...)
fi
