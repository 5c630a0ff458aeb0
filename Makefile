# musicbox: `make help` lists the targets. Two commands do all the set-up on a fresh machine:
#   make demo   (set up if needed, then run the main job)
#   make test   (set up if needed, then run every test tier against the real local stack)
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV := .venv/bin
MUSICBOX := $(VENV)/musicbox
PYTEST := $(VENV)/pytest

.PHONY: help setup up down status demo test test-unit test-component test-integration test-clusters lint bench clean-state

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-18s %s\n", $$1, $$2}'

setup: ## install Debian packages, .venv and the Kafka/Spark jars (idempotent)
	@./infra/setup.sh

up: setup ## start Kafka (KRaft) and Prometheus on loopback, create the topics
	@$(MUSICBOX) up

down: ## stop the services `up` started (state under var/ is kept)
	@if [ -x $(MUSICBOX) ]; then $(MUSICBOX) down; fi

status: ## show what runs, where, and how healthy
	@$(MUSICBOX) status

demo: setup ## the main job: `musicbox demo` on a generated data set, end to end
	@$(MUSICBOX) demo

test: setup ## every test tier: unit, component, integration, clusters (starts and stops the stack)
	@./infra/run_tests.sh

test-unit: setup ## unit tests only (no JVM, no network)
	@$(PYTEST) -m unit -q

test-component: setup ## component tests only (local Spark, Faust test context)
	@$(PYTEST) -m component -q

test-integration: setup ## integration tests only (brings the stack up; leaves it running)
	@$(MUSICBOX) up && $(PYTEST) -m integration -q

test-clusters: setup ## the cluster faults: 3 Kafka nodes and a Spark cluster of their own (~12 min)
	@$(PYTEST) -m clusters -q

lint: setup ## ruff and mypy
	@$(VENV)/ruff check . && $(VENV)/ruff format --check . && $(VENV)/mypy musicbox producers streaming batch models infra demo tests examples

bench: setup ## benchmarks (figures into BENCHMARKS.md by hand)
	@for b in replay stream train score clusters; do echo "== bench/$$b.py"; $(VENV)/python -m bench.$$b || exit 1; done

clean-state: down ## remove all local state under var/ except the jars (Kafka data, models, caches)
	@find var -mindepth 1 -maxdepth 1 ! -name jars -exec rm -rf {} +
