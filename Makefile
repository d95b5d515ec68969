# Messenger API — every target installs dependencies first when package-lock.json changed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NPM_STAMP := node_modules/.install-stamp
# The services profile: real Postgres, Redis and RabbitMQ at the usual local settings.
SERVICES_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/messenger_test
SERVICES_REDIS_URL ?= redis://127.0.0.1:6379
SERVICES_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672
# `make test` is the embedded profile whatever the caller's shell exports.
# Compose v2 when installed, else docker-compose 1.29 (Debian 12); BuildKit for the image's build secret.
COMPOSE = DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1 $(shell docker compose version >/dev/null 2>&1 && echo 'docker compose' || echo docker-compose) -p messenger -f deploy/docker-compose.yml
API_REPLICAS ?= 1
CONSUMER_REPLICAS ?= 1
EMBEDDED := env -u DATABASE_URL -u POSTGRES_HOSTS -u POSTGRES_HOST -u REDIS_URL -u AMQP_URL
# V8 heap settings of the long-running roles (api, consumer), the same as the image's entrypoint
# (deploy/docker-entrypoint.sh), the npm scripts and the bench use; a migration keeps V8's defaults.
NODE_FLAGS := --max-semi-space-size=8 --heap-growing-percent=25

.PHONY: help install build dev start consumer migrate test test-services test-scale bench lint format clean prod prod-down check-delivery image-check

help: ## List the targets (coloured on a terminal, plain text when piped or with NO_COLOR)
	@if [ -t 1 ] && [ -z "$${NO_COLOR:-}" ]; then on='\033[36m'; off='\033[0m'; else on=; off=; fi; \
	grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*?## "}; {printf "  %s%-16s%s %s\n", on, $$1, off, $$2}'

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(NPM_STAMP) ## Install dependencies (npm ci) if package-lock.json changed

build: $(NPM_STAMP) ## Compile TypeScript to dist/
	npm run build

dev: build ## Run the API on embedded defaults (PGlite, memory cache, in-process search) at http://localhost:8080
	node $(NODE_FLAGS) dist/src/main.js api

start: build ## Run the built API with the settings of the environment (DATABASE_URL, REDIS_URL, AMQP_URL, ...)
	node $(NODE_FLAGS) dist/src/main.js api

consumer: build ## Run a search consumer (needs AMQP_URL, REDIS_URL and a shared database)
	node $(NODE_FLAGS) dist/src/main.js consumer

migrate: build ## Apply database migrations to the configured database
	node dist/src/main.js migrate

test: $(NPM_STAMP) ## Run the tests on embedded defaults (no services needed), with coverage
	$(EMBEDDED) npm test

test-services: $(NPM_STAMP) ## Run the tests against real Postgres, Redis and RabbitMQ (SERVICES_*_URL)
	DATABASE_URL=$(SERVICES_DATABASE_URL) REDIS_URL=$(SERVICES_REDIS_URL) AMQP_URL=$(SERVICES_AMQP_URL) npm test

# The suites that exercise what scales out: caches, budgets, search results and events on a Redis
# Cluster, history and search on a primary with a streaming replica, search jobs on a quorum queue.
SCALE_SUITES := test/scale-*.test.ts test/events.test.ts test/cache.test.ts test/cache-l1.test.ts test/cache-chat-lists.test.ts test/throttling.test.ts test/search.test.ts \
	test/search-jobs.test.ts test/search-outages.test.ts test/search-abuse.test.ts test/history.test.ts test/messages-send.test.ts
test-scale: $(NPM_STAMP) ## Scale-out tests: throwaway Redis Cluster + Postgres primary/replica (scripts/scale-servers.sh), quorum queue on SERVICES_AMQP_URL
	scripts/scale-servers.sh -- env AMQP_URL=$(SERVICES_AMQP_URL) SEARCH_QUEUE_TYPE=quorum bash -c \
	  'DATABASE_URL=$$SCALE_DATABASE_URL DATABASE_REPLICA_URLS=$$SCALE_REPLICA_URL REDIS_URL=$$SCALE_REDIS_URL npx mocha $(SCALE_SUITES)'

bench: $(NPM_STAMP) build ## Benchmark the built API on local Postgres, Redis, RabbitMQ (seeds 1M messages once) → bench/results/latest.md
	npm run bench

lint: $(NPM_STAMP) ## eslint, prettier --check and the TypeScript compiler
	npm run lint

format: $(NPM_STAMP) ## Rewrite files with prettier
	npm run format

clean: ## Remove build output, coverage and the embedded database
	rm -rf dist coverage data

prod: ## Build the image and start the stack behind nginx on :8080 (deploy/.env; API_REPLICAS=3 CONSUMER_REPLICAS=2 to scale)
	$(COMPOSE) up -d --build --scale api=$(API_REPLICAS) --scale consumer=$(CONSUMER_REPLICAS)
	$(COMPOSE) ps

prod-down: ## Stop the production stack (volumes kept; `docker compose -p messenger ... down -v` also drops the data)
	$(COMPOSE) down

check-delivery: ## Lint and validate Dockerfile, compose, nginx, playbook and .gitlab-ci.yml (installs its tools)
	bash scripts/check-delivery.sh

image-check: ## Build the image (base image made locally when no registry) and run api, migrate, consumer from it
	bash scripts/image-check.sh
