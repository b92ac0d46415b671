import { readdir, readFile } from 'node:fs/promises';
import { cpuSeconds, mainThreadCpuSeconds } from './server-stats.js';

/**
 * Where a call's CPU goes on this machine: the service process, PostgreSQL (every process named
 * postgres visible in /proc: the backends serving the service, and the background writers that
 * its writes cause) and the bench process itself (the load generator), in CPU milliseconds per call.
 * Other helpers' processes are not counted. PostgreSQL is counted only when it runs on this machine.
 */

async function postgresCpuSeconds(): Promise<number | undefined> {
  let total = 0;
  let seen = 0;
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (!comm.startsWith('postgres')) continue;
    const s = await cpuSeconds(Number(entry));
    if (s === undefined) continue;
    total += s;
    seen++;
  }
  return seen > 0 ? total : undefined;
}

export interface CpuMark {
  service?: number;
  /** The service's event-loop thread, part of `service`. */
  serviceMain?: number;
  postgres?: number;
  bench: NodeJS.CpuUsage;
}

export async function cpuMark(servicePid: number): Promise<CpuMark> {
  return { service: await cpuSeconds(servicePid), serviceMain: await mainThreadCpuSeconds(servicePid), postgres: await postgresCpuSeconds(), bench: process.cpuUsage() };
}

/** "identity 1.4 + PostgreSQL 1.2 + bench client 1.1 ms CPU per call" between two marks. */
export async function cpuPerCall(start: CpuMark, servicePid: number, calls: number, serviceName: string): Promise<string> {
  return (await cpuShares(start, servicePid, calls, serviceName)).text;
}

/**
 * cpuPerCall's text, the sum of its parts and the service's event-loop share of it (undefined
 * when a part could not be read).
 */
export async function cpuShares(
  start: CpuMark,
  servicePid: number,
  calls: number,
  serviceName: string,
): Promise<{ text: string; totalMs?: number; serviceMainMs?: number }> {
  const end = await cpuMark(servicePid);
  const ms = (a?: number, b?: number) => (a === undefined || b === undefined || calls === 0 ? undefined : ((b - a) * 1000) / calls);
  const bench = process.cpuUsage(start.bench);
  const parts = [
    [serviceName, ms(start.service, end.service)],
    ['PostgreSQL', ms(start.postgres, end.postgres)],
    ['bench client', calls === 0 ? undefined : (bench.user + bench.system) / 1000 / calls],
  ] as const;
  const serviceMainMs = ms(start.serviceMain, end.serviceMain);
  const fmt = (v?: number) => (v === undefined ? '?' : v.toFixed(2));
  const text = `${parts.map(([n, v], i) => `${n} ${fmt(v)}${i === 0 && serviceMainMs !== undefined ? ` (event-loop thread ${fmt(serviceMainMs)})` : ''}`).join(' + ')} ms CPU per call on the same 2 cores`;
  const totalMs = parts.every(([, v]) => v !== undefined) ? parts.reduce((a, [, v]) => a + v!, 0) : undefined;
  return { text, totalMs, serviceMainMs };
}
