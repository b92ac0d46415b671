import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorCatalogue, type ErrorEntry } from '../src/shared/error-catalogue.js';

/**
 * Renders docs/errors.md from src/shared/error-catalogue.ts; run it after changing the catalogue
 * (`npx tsx scripts/errors-doc.ts`). error-catalogue.test.ts fails while the two differ.
 */

export const errorsDocPath = fileURLToPath(new URL('../docs/errors.md', import.meta.url));

export function renderErrorsDoc(): string {
  const rows = Object.entries(errorCatalogue as Record<string, ErrorEntry>).map(([id, entry]) => {
    const grpc = entry.kinds.map((k) => `\`${k.toUpperCase()}\``).join(', ');
    const connect = entry.kinds.map((k) => `\`${k}\``).join(', ');
    return `| \`${id}\` | ${grpc} | ${connect} | ${entry.meaning.replaceAll('|', '\\|')} |`;
  });
  return [
    '# Error ids',
    '',
    'Every failed call carries a gRPC status code (Connect uses the same code, spelled in lower case),',
    'a message that is safe to show, and a stable id in the `latch-error-id` response trailer',
    '(a header on Connect). Switch on the id, not on the message. Throttled and unavailable answers',
    'also carry `retry-after` (seconds) and a `google.rpc.RetryInfo` detail.',
    '',
    'This table is generated from `src/shared/error-catalogue.ts` by `npx tsx scripts/errors-doc.ts`;',
    'a test fails when the two differ. Ids marked "start-up" stop the service from starting and are',
    'never sent to a client.',
    '',
    '| id | gRPC code | Connect code | meaning |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) writeFileSync(errorsDocPath, renderErrorsDoc());
