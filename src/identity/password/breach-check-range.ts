/**
 * The client side of the Have I Been Pwned k-anonymity range API: GET {base}/range/{PREFIX}
 * answers every SHA-1 suffix (35 upper-case hex characters) that shares the 5-character prefix,
 * one `SUFFIX:COUNT` line each. Only the prefix ever leaves this process.
 */

export interface RangeClientOptions {
  /** HIBP_URL, e.g. https://api.pwnedpasswords.com (no trailing /range). */
  baseUrl: string;
  /** HIBP_TIMEOUT_MS: covers connecting, the headers and reading the body. */
  timeoutMs: number;
  userAgent: string;
}

/** The suffixes of one prefix that appeared in a breach, packed as "\nSUFFIX\nSUFFIX\n". */
export interface BreachedSuffixes {
  has(suffix: string): boolean;
}

/** Why a range could not be used; never carries the prefix's response body or any hash. */
export class RangeFetchError extends Error {
  override readonly name = 'RangeFetchError';
}

/**
 * A real answer is about 1,000 lines of ~40 bytes (with padding); anything far larger is not the
 * range API, and reading it all would be the memory an attacker controlling the network wants.
 */
const MAX_BODY_BYTES = 256 * 1024;

const LINE = /^([0-9A-F]{35}):(\d{1,12})$/;

export const isRangePrefix = (prefix: string): boolean => /^[0-9A-F]{5}$/.test(prefix);

export async function fetchRange(prefix: string, opts: RangeClientOptions): Promise<BreachedSuffixes> {
  // A guard, not validation of input: the caller computes the prefix, and nothing longer may leave.
  if (!isRangePrefix(prefix)) throw new RangeFetchError('not a 5-character upper-case hex prefix');
  const url = `${opts.baseUrl.replace(/\/+$/, '')}/range/${prefix}`;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { 'Add-Padding': 'true', 'User-Agent': opts.userAgent, Accept: 'text/plain' },
      // A redirect could only come from something that is not the range API.
      redirect: 'error',
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
  } catch (err) {
    // The cause is left out on purpose: fetch errors may quote the URL, and with it the prefix.
    throw new RangeFetchError(describeFetchFailure(err));
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => undefined);
    throw new RangeFetchError(`range API answered HTTP ${res.status}`);
  }
  let body: string;
  try {
    body = await readCapped(res, MAX_BODY_BYTES);
  } catch (err) {
    if (err instanceof RangeFetchError) throw err;
    throw new RangeFetchError(describeFetchFailure(err));
  }
  return parseRange(body);
}

/**
 * Parses `SUFFIX:COUNT` lines (CRLF or LF). Padding lines (count 0) are dropped: they are
 * random suffixes the API adds so the response size does not reveal the prefix's population.
 * Anything else that is not such a line means the answer is not a range, and none of it is used.
 */
export function parseRange(body: string): BreachedSuffixes {
  let packed = '\n';
  let lines = 0;
  for (const raw of body.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const m = LINE.exec(line);
    if (!m) throw new RangeFetchError(`range API answered a line that is not SUFFIX:COUNT (line ${lines + 1})`);
    lines++;
    if (Number(m[2]) > 0) packed += `${m[1]}\n`;
  }
  // The real API never answers an empty range (every prefix has suffixes, and padding adds more).
  if (lines === 0) throw new RangeFetchError('range API answered no lines');
  return { has: (suffix) => packed.includes(`\n${suffix}\n`) };
}

async function readCapped(res: Response, maxBytes: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new RangeFetchError(`range API answer is larger than ${maxBytes} bytes`);
  }
  if (!res.body) return '';
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let text = '';
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      throw new RangeFetchError(`range API answer is larger than ${maxBytes} bytes`);
    }
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

function describeFetchFailure(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string } } | undefined;
  if (e?.name === 'TimeoutError') return 'range API did not answer in time';
  if (e?.name === 'AbortError') return 'range API request was aborted';
  const code = e?.cause?.code;
  return code ? `range API unreachable (${code})` : 'range API unreachable';
}
