# Thin wrappers: every target calls a script in scripts/ or the ecomrisk CLI.
.DEFAULT_GOAL := help
ECOMRISK := .venv/bin/ecomrisk
ARGS ?=

.PHONY: help bootstrap up test lint format bench chaos clean

help: ## List the targets and what each one does
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

bootstrap: ## Create .venv and install ecomrisk with dev tools (again only when pyproject.toml changed)
	@bash scripts/bootstrap.sh

up: ## Run Redis, worker, Flower, dashboard and producer in the foreground; Ctrl-C stops all (ARGS=--no-producer)
	@bash scripts/up.sh $(ARGS)

test: ## Lint, then run the test suite exactly as CI does (ARGS="-k up -x" goes to pytest)
	@bash scripts/test.sh $(ARGS)

lint: ## ruff check, ruff format --check and mypy
	@bash scripts/lint.sh

format: bootstrap ## Format the code and apply safe lint fixes
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench: bootstrap ## Every pipeline and dashboard figure, JSON in data/bench/ (~15 min on 2 cores; ARGS=--smoke)
	$(ECOMRISK) bench $(ARGS)

chaos: bootstrap ## 2 min of load, kill -9 of workers, a Redis restart; PASS/FAIL (ARGS=--duration 20)
	$(ECOMRISK) chaos $(ARGS)

clean: ## Remove caches and build output; keeps .venv and data/
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
