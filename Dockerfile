# Messenger API image: one image, three roles (api | consumer | migrate).
#   docker build -t messenger-api .
#   docker run -p 8080:8080 messenger-api               # API with the embedded database
#   docker run --env-file deploy/.env messenger-api consumer
#   docker run --env-file deploy/.env messenger-api migrate
# Settings are environment variables: see deploy/.env.example.
# Behind a TLS-intercepting proxy, hand its CA to `npm ci` as a build secret (BuildKit); it is
# mounted for the npm steps only and is no layer of the image:
#   docker build --secret id=npm_ca,src="$NODE_EXTRA_CA_CERTS" -t messenger-api .
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: compile TypeScript with the dev dependencies -------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi \
    && npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# No source maps in the image (tsconfig.json emits them for local debugging).
RUN npm run build -- --sourceMap false

# --- prod-deps: production dependencies only (bcrypt ships prebuilt binaries) ----------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi \
    && npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime ---------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    DATA_DIR=/app/data
WORKDIR /app
# Code and dependencies stay owned by root (read-only for the app); only DATA_DIR, used by the
# embedded database when no DATABASE_URL / POSTGRES_HOSTS is set, is writable.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json swagger.yml ./
COPY deploy/docker-entrypoint.sh /usr/local/bin/messenger-entrypoint
RUN chmod 0755 /usr/local/bin/messenger-entrypoint \
    && mkdir -p /app/data \
    && chown node:node /app/data
# The "node" user of the official image (uid 1000), numeric so that runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080
# No curl in the image: node's own fetch probes /ready (200 only once /v1 can serve: schema in place,
# database answering); /ping stays the liveness check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/local/bin/messenger-entrypoint"]
CMD ["api"]
