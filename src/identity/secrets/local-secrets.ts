import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { LatchError } from '../../shared/errors.js';

const NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$/;

/**
 * Returns the secret stored in `<dataDir>/secrets/<name>`, creating it with `create()` the first
 * time. Only used in embedded mode, where the service invents its own key material; production
 * configures every secret explicitly.
 *
 * The file is written whole to a temporary name and then hard-linked into place: `link` fails
 * when the target exists, so when two processes race exactly one value wins and both return it,
 * and a crash never leaves a half-written secret behind.
 */
export async function loadOrCreateLocalSecret(
  dataDir: string,
  name: string,
  create: () => string,
): Promise<string> {
  if (!NAME.test(name)) throw new Error(`invalid local secret name: ${JSON.stringify(name)}`);
  const dir = path.join(path.resolve(dataDir), 'secrets');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is masked by the umask and ignored for an existing folder: set it explicitly.
  await chmod(dir, 0o700);
  const file = path.join(dir, name);

  const existing = await readSecret(file);
  if (existing !== undefined) return existing;

  const value = create().trim();
  if (value.length === 0) throw new Error(`local secret ${name}: generator returned an empty value`);
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(`${value}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const stored = await readSecret(file);
  if (stored === undefined) throw new Error(`local secret ${name} vanished while being created`);
  return stored;
}

async function readSecret(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const value = text.trim();
  if (value.length === 0) {
    throw new LatchError(
      'failed_precondition',
      'ERR_LOCAL_SECRET_EMPTY',
      `${file} is empty; restore it from a backup or delete it to generate a new one (data it protected becomes unreadable)`,
    );
  }
  return value;
}
