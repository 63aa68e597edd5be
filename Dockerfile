# syntax=docker/dockerfile:1
# The Missing Details service as an image (docs/container.md). One image runs the three processes:
# the service (the default command), the standalone legacy bridge worker and the legacy simulator
# (compose.yaml), all compiled JavaScript started by node itself: no TypeScript at start-up, no shell
# or init in between, so node is PID 1 and gets SIGTERM (src/server.ts drains and exits 0).

# Build: every dependency, then tsc to dist/ (tsconfig.build.json: src, routers, legacy-bridge,
# migrations, simulator, scripts).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY routers ./routers
COPY legacy-bridge ./legacy-bridge
COPY migrations ./migrations
COPY simulator ./simulator
COPY scripts ./scripts
RUN npm run build && find dist -name '*.d.ts' -delete

# Runtime: production dependencies only (no tsx, no typescript, no pino-pretty) and the compiled output.
# The tRPC packages declare typescript as a peer dependency (for their types), so npm installs it even
# with --omit=dev; nothing requires it at run time, so it goes (23 MB).
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/typescript
COPY --from=build /app/dist ./dist
# CAPTURE_SPOOL_DIR (./var/capture-spool) must be writable by the unprivileged user; mount a volume
# there so a spooled capture outlives the container.
RUN mkdir -p var/capture-spool && chown -R node:node var
USER node
# Listening on every interface needs AUTH_JWT_SECRET or AUTH_JWKS_URL (src/config.ts refuses the
# public development secret off loopback, and NODE_ENV=production requires one anyway).
ENV HOST=0.0.0.0 PORT=3000 WORKER_PORT=3001
EXPOSE 3000 3001
# Readiness of the service (200 once migrated and the database answers). Slim has no curl: node's fetch.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/health`, { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
# The same V8 flags and tracing preload as `npm start` (package.json).
CMD ["node", "--max-old-space-size=256", "--max-semi-space-size=16", "--import", "./dist/src/tracing.js", "dist/src/server.js"]
