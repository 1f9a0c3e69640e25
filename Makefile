# The two commands: `make test` (what CI runs) and `make report` (the PDF and the
# deliverables). Everything else is a step of those or a convenience.
SHELL := /bin/bash
# simd on Go 1.26 (the SIMD kernels of the Go backend), nothing on other Go releases
# (scripts/goexperiment.sh says why).
export GOEXPERIMENT := $(shell scripts/goexperiment.sh)
export GOMLX_BACKEND ?= go
export GOMLX_NO_AUTO_INSTALL := 1
# Go's asynchronous preemption with GOEXPERIMENT=simd leaves AVX-512 upper state dirty on Intel
# CPUs; math.Exp, math.Tanh and math.FMA then run 50-100x slower (docs/STATUS.md, session 6).
export GODEBUG := asyncpreemptoff=1
PYTHON := /usr/bin/python3
OUT ?= outputs
PRESET ?= cpu
GO_TEST_FLAGS ?= -timeout 45m

.PHONY: setup test vet vet-next-go unit notebooks-smoke report notebook bench clean

## setup: install Jupyter, Chromium, GoNB and the project's kernels (idempotent)
setup:
	@scripts/setup.sh

## test: setup, go vet, go test, every notebook at the smoke preset + PDF export check
test: setup vet unit notebooks-smoke

vet:
	@test -z "$$(gofmt -l diffusion)" || { echo "gofmt would change:"; gofmt -l diffusion; exit 1; }
	go vet ./...

## vet-next-go: vet (which compiles every package and test) with Go 1.27, the next release,
## without the SIMD kernels (scripts/goexperiment.sh); CI runs it after `make test`
vet-next-go:
	GOTOOLCHAIN=go1.27.3 $(MAKE) --no-print-directory vet

unit:
	go test $(GO_TEST_FLAGS) ./...

notebooks-smoke:
	go run ./diffusion/cmd/report -preset smoke -out $(OUT)/smoke

## report: every notebook at the cpu preset -> outputs/report.pdf + deliverables
report: setup
	go run ./diffusion/cmd/report -preset $(PRESET) -out $(OUT)

## notebook: serve the notebooks on http://127.0.0.1:8888 (classic Jupyter notebook)
notebook: setup
	cd notebooks && $(PYTHON) -m notebook --ip=127.0.0.1 --no-browser

## bench: Go benchmarks of the models' training and sampling steps
bench:
	go test -run '^$$' -bench . -benchtime 5x ./diffusion/...

clean:
	rm -rf $(OUT)
