import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { summarize, type LatencySummary } from './stats.js';

/** One request as h2load replays it: path, headers and body (a gRPC frame or a Connect JSON document). */
export interface LoadRequest {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}
/** A unary gRPC call: the body is the length-prefixed message. */
export type GrpcRequest = LoadRequest;

/** gRPC length-prefixed message: flag byte 0 (uncompressed), uint32 BE length, protobuf bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(message.length, 1);
  Buffer.from(message.buffer, message.byteOffset, message.byteLength).copy(out, 5);
  return out;
}

export function grpcRequest(pathName: string, message: Uint8Array, extraHeaders: Record<string, string> = {}): GrpcRequest {
  return {
    path: pathName,
    headers: { 'content-type': 'application/grpc', te: 'trailers', ...extraHeaders },
    body: grpcFrame(message),
  };
}

/** A unary Connect call with the JSON codec, as a browser's Connect client sends it over HTTP/1.1. */
export function connectJsonRequest(pathName: string, message: unknown, extraHeaders: Record<string, string> = {}): LoadRequest {
  return {
    path: pathName,
    headers: { 'content-type': 'application/json', 'connect-protocol-version': '1', ...extraHeaders },
    body: Buffer.from(JSON.stringify(message)),
  };
}

/** Sends exactly the request h2load --h1 will send; Connect answers errors with a non-200 status. */
export async function probeJson(baseUrl: string, req: LoadRequest): Promise<{ status: number; json: unknown }> {
  const res = await fetch(new URL(req.path, baseUrl), { method: 'POST', headers: req.headers, body: new Uint8Array(req.body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

/**
 * Sends exactly the bytes h2load will send and reads the answer the way a gRPC client does:
 * h2load counts every response as 2xx because the gRPC status travels in the trailers.
 */
export async function probe(baseUrl: string, req: GrpcRequest): Promise<{ grpcStatus: string; message: Buffer }> {
  const session = http2.connect(baseUrl);
  try {
    return await new Promise((resolve, reject) => {
      session.once('error', reject);
      const stream = session.request({ ':method': 'POST', ':path': req.path, ...req.headers });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      stream.on('response', (headers) => {
        if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']); // trailers-only
      });
      stream.on('trailers', (trailers) => (status = String(trailers['grpc-status'])));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', reject);
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        const len = body.length >= 5 ? body.readUInt32BE(1) : 0;
        resolve({ grpcStatus: status ?? 'missing', message: body.subarray(5, 5 + len) });
      });
      stream.end(req.body);
    });
  } finally {
    session.close();
  }
}

export interface H2loadOptions {
  clients: number;
  streamsPerClient: number;
  /** Timed run; otherwise `requests`. */
  durationSeconds?: number;
  requests?: number;
  /** HTTP/1.1 instead of HTTP/2 (then `streamsPerClient` is the pipelining depth; keep it 1). */
  h1?: boolean;
}

export interface H2loadResult {
  requests: number;
  succeeded: number;
  failed: number;
  seconds: number;
  rps: number;
  latency: LatencySummary;
  samplesMs: number[];
}

/** Runs h2load against one method (gRPC over HTTP/2, or Connect JSON over HTTP/1.1 with `h1`); percentiles come from its per-request log. */
export async function runH2load(baseUrl: string, req: LoadRequest, opts: H2loadOptions): Promise<H2loadResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'latch-h2load-'));
  try {
    const bodyFile = path.join(dir, 'body.bin');
    const logFile = path.join(dir, 'requests.log');
    await writeFile(bodyFile, req.body);
    const args = ['-c', String(opts.clients), '-m', String(opts.streamsPerClient), '-t', '1', '-d', bodyFile, '--log-file', logFile];
    if (opts.h1) args.push('--h1');
    if (opts.durationSeconds !== undefined) args.push('-D', String(opts.durationSeconds));
    else args.push('-n', String(opts.requests ?? 1000));
    for (const [k, v] of Object.entries(req.headers)) args.push('-H', `${k}: ${v}`);
    args.push(new URL(req.path, baseUrl).toString());
    const out = await execText('h2load', args);

    const finished = /finished in ([\d.]+)(s|ms|us), ([\d.]+) req\/s/.exec(out);
    const counts = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
    if (!finished || !counts) throw new Error(`unexpected h2load output:\n${out}`);
    const samples: number[] = [];
    for (const line of (await readFile(logFile, 'utf8')).split('\n')) {
      const cols = line.split('\t');
      if (cols.length >= 3 && cols[1] !== '-1') samples.push(Number(cols[2]) / 1000);
    }
    return {
      requests: Number(counts[2]),
      succeeded: Number(counts[3]),
      failed: Number(counts[4]) + Number(counts[5]) + Number(counts[6]),
      seconds: Number(finished[1]) / { s: 1, ms: 1e3, us: 1e6 }[finished[2] as 's' | 'ms' | 'us'],
      rps: Number(finished[3]),
      latency: summarize(samples),
      samplesMs: samples,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function execText(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited with ${code}:\n${out}`))));
  });
}
