# Entry points; each one does its own set-up (see scripts/). Settings pass through from the
# environment (CONTRACT §3), e.g. `TEMPORAL_ADDRESS=127.0.0.1:7300 make up`.
SHELL := /bin/bash

.PHONY: demo test up down status reset setup lint bench histories compose-check screenshots chaos

## Set up, start the stack, place and pay one sample order, print it and its Web UI link.
demo:
	bash scripts/demo.sh

## Set up, start the Temporal dev server, then fmt, clippy and every test.
test:
	bash scripts/test.sh

## Start the whole stack in the background and wait until it is healthy (idempotent).
up:
	bash scripts/stack.sh up

## Stop the stack (API, worker, receiver, Temporal dev server).
down:
	bash scripts/stack.sh down

## Stop the stack and forget its state (the dev server's workflows, the shop's database).
reset:
	bash scripts/stack.sh reset

## Show what runs.
status:
	bash scripts/stack.sh status

## Install the toolchain pieces, the Temporal CLI and PostgreSQL.
setup:
	bash scripts/setup.sh

## cargo fmt --check and clippy -D warnings.
lint:
	bash scripts/test.sh lint

## Record the workflow histories the replay test replays (tests/histories/), from real runs.
histories:
	bash scripts/histories.sh

## The benchmark on a release build: orders beside the orchestration floor (BENCH_ARGS to change it).
bench:
	bash scripts/bench.sh $(BENCH_ARGS)

## Validate docker-compose.yml without a Docker engine (also part of `make test`).
compose-check:
	bash scripts/compose-check.sh

## Web UI screenshots for the README (docs/screenshots/): a completed and a compensated order, taken by headless Chromium.
screenshots:
	bash scripts/screenshots.sh

## Contention, crashes, outages and hostile input on a private stack, each ended by the CONTRACT §6 check (CHAOS_ARGS=--quick for the short form).
chaos:
	bash scripts/chaos.sh $(CHAOS_ARGS)
	bash scripts/temporal.sh start
	RESET_MATRIX=full cargo test -p saga-tests --test operations reset -- --nocapture
