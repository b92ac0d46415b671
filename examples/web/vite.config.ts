import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const repo = fileURLToPath(new URL('../..', import.meta.url));

// The app imports Latch's generated clients from src/gen (TypeScript with .js import specifiers,
// which Vite resolves to the .ts files) and the packages in the repository's node_modules.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  server: { port: 5173, strictPort: true, fs: { allow: [repo] } },
  preview: { port: 5173, strictPort: true },
  build: { outDir: 'dist', emptyOutDir: true },
});
