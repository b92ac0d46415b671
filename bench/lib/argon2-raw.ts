import { spawn } from 'node:child_process';
import { argon2id, hash, verify } from 'argon2';
import { closedLoop, type LatencySummary } from './stats.js';

/**
 * The Login baseline: bare argon2.verify calls at a fixed concurrency, in a process of their own
 * (as the service is), for the same duration as the Login load.
 */

export interface Argon2Params {
  memoryKiB: number;
  timeCost: number;
  parallelism: number;
}

export interface RawVerifyResult {
  verifies: number;
  seconds: number;
  perSecond: number;
  latency: LatencySummary;
  samplesMs: number[];
  /** CPU of the whole process (the libuv threads hashing included) per verify. */
  cpuMsPerVerify: number;
}

const self = new URL(import.meta.url).pathname;

export function runRawVerifies(params: Argon2Params, concurrency: number, durationMs: number, threadpool: number): Promise<RawVerifyResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', self, JSON.stringify({ params, concurrency, durationMs })], {
      env: { ...process.env, UV_THREADPOOL_SIZE: String(threadpool) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`raw argon2 run exited with ${code}`));
      try {
        resolve(JSON.parse(out) as RawVerifyResult);
      } catch (err) {
        reject(err);
      }
    });
  });
}

async function main(arg: string): Promise<void> {
  const { params, concurrency, durationMs } = JSON.parse(arg) as { params: Argon2Params; concurrency: number; durationMs: number };
  const password = 'violet-harbour-quietly-1923';
  const phc = await hash(password, { type: argon2id, memoryCost: params.memoryKiB, timeCost: params.timeCost, parallelism: params.parallelism, hashLength: 32 });
  // Warm the thread pool and the allocator the way the service's warm-up does.
  await Promise.all(Array.from({ length: concurrency }, () => verify(phc, password)));
  const cpu0 = process.cpuUsage();
  const r = await closedLoop(concurrency, durationMs, async () => {
    if (!(await verify(phc, password))) throw new Error('argon2.verify rejected the right password');
    return true;
  });
  const cpu = process.cpuUsage(cpu0);
  if (r.failed > 0) throw new Error(r.firstError);
  const result: RawVerifyResult = {
    verifies: r.ok,
    seconds: r.seconds,
    perSecond: r.ok / r.seconds,
    latency: r.latency,
    samplesMs: r.samplesMs,
    cpuMsPerVerify: (cpu.user + cpu.system) / 1000 / r.ok,
  };
  process.stdout.write(JSON.stringify(result));
}

if (process.argv[1] && new URL(`file://${process.argv[1]}`).pathname === self) {
  main(process.argv[2]!).catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
