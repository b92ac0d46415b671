import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LatencySummary } from './stats.js';

/** One measured figure beside the baseline measured in the same run. */
export interface Row {
  name: string;
  /** Requests (or verifies) per second. */
  rps: number;
  latency?: LatencySummary;
  /** Server CPU use during the run, in cores (1.0 = one core busy). */
  serverCores?: number;
  /** Largest resident set of the server seen under this load. */
  rssMiB?: number;
  /** Event-loop delay inside the service under this load (from its /metrics). */
  loopDelay?: { p99Ms: number; maxMs: number };
  baseline?: { name: string; rps: number; latency?: LatencySummary; rssMiB?: number; serverCores?: number };
  /** rps / baseline.rps; undefined when a correctness check failed. */
  ratio?: number;
  /** p50 / baseline p50: how many times slower the median call is. */
  p50Ratio?: number;
  target?: number;
  note?: string;
}

export interface Report {
  date: string;
  machine: { cpu: string; cpus: number; memoryGiB: number; os: string; node: string };
  setup: Record<string, string>;
  rows: Row[];
  checks: { name: string; ok: boolean; detail: string }[];
}

export function machine(): Report['machine'] {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

const n = (x: number | undefined, digits = 0) => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(digits));
const ms = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '—' : x < 10 ? x.toFixed(2) : x.toFixed(1));

export function verdict(r: Row): string {
  if (r.target === undefined) return '';
  if (r.ratio === undefined) return 'not computed (check failed)';
  return r.ratio >= r.target ? `met (≥ ${r.target})` : `missed (< ${r.target})`;
}

export function toMarkdown(rep: Report): string {
  const lines = [
    '# Latch benchmark',
    '',
    `- date: ${rep.date}`,
    `- machine: ${rep.machine.cpus} × ${rep.machine.cpu}, ${rep.machine.memoryGiB} GiB, ${rep.machine.os}`,
    `- node: ${rep.machine.node}`,
    ...Object.entries(rep.setup).map(([k, v]) => `- ${k}: ${v}`),
    '',
    '| figure | req/s | p50 ms | p99 ms | server cores | server RSS MiB | event-loop delay p99 / max ms | baseline (same run) | baseline req/s | baseline p50 / p99 ms | baseline RSS MiB | req/s ratio | p50 × | target |',
    '|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|',
    ...rep.rows.map((r) =>
      [
        r.name,
        n(r.rps, r.rps < 100 ? 1 : 0),
        ms(r.latency?.p50Ms),
        ms(r.latency?.p99Ms),
        n(r.serverCores, 2),
        n(r.rssMiB),
        r.loopDelay ? `${ms(r.loopDelay.p99Ms)} / ${ms(r.loopDelay.maxMs)}` : '—',
        r.baseline?.name ?? '—',
        r.baseline ? n(r.baseline.rps, r.baseline.rps < 100 ? 1 : 0) : '—',
        r.baseline?.latency ? `${ms(r.baseline.latency.p50Ms)} / ${ms(r.baseline.latency.p99Ms)}` : '—',
        n(r.baseline?.rssMiB),
        r.ratio === undefined ? '—' : r.ratio.toFixed(2),
        r.p50Ratio === undefined ? '—' : r.p50Ratio.toFixed(2),
        r.target === undefined ? '—' : verdict(r),
      ].join(' | ').replace(/^/, '| ').replace(/$/, ' |'),
    ),
    '',
    ...rep.rows.filter((r) => r.note).map((r) => `- ${r.name}: ${r.note}`),
    '',
    '## Correctness checks',
    '',
    ...rep.checks.map((c) => `- [${c.ok ? 'x' : ' '}] ${c.name}: ${c.detail}`),
    '',
  ];
  return lines.join('\n');
}

export async function writeReport(dir: string, rep: Report): Promise<{ md: string; json: string }> {
  await mkdir(dir, { recursive: true });
  const md = path.join(dir, 'latest.md');
  const json = path.join(dir, 'latest.json');
  await writeFile(md, toMarkdown(rep));
  await writeFile(json, `${JSON.stringify(rep, null, 2)}\n`);
  return { md, json };
}
