import { describe, expect, it } from 'vitest';
import { Metadata } from '@grpc/grpc-js';
import { MetadataHeaders, metadataToHeaders } from './metadata-headers.js';

function metadata(): Metadata {
  const md = new Metadata();
  md.set('authorization', 'Bearer abc');
  md.set('user-agent', 'grpc-node-js/1.0');
  md.add('x-forwarded-for', '10.0.0.1');
  md.add('x-forwarded-for', ' 10.0.0.2 ');
  md.set('trace-bin', Buffer.from([1, 2, 3, 250]));
  md.set('empty', '');
  return md;
}

describe('MetadataHeaders', () => {
  it('answers get and has exactly as a full Headers copy would', () => {
    const view = new MetadataHeaders(metadata());
    const copy = metadataToHeaders(metadata());
    for (const name of ['authorization', 'Authorization', 'USER-AGENT', 'x-forwarded-for', 'trace-bin', 'Trace-Bin', 'empty', 'absent']) {
      expect(view.get(name), name).toBe(copy.get(name));
      expect(view.has(name), name).toBe(copy.has(name));
    }
    expect(view.get('x-forwarded-for')).toBe('10.0.0.1, 10.0.0.2');
    expect(view.get('trace-bin')).toBe(Buffer.from([1, 2, 3, 250]).toString('base64'));
  });

  it('rejects names Headers rejects', () => {
    const view = new MetadataHeaders(metadata());
    expect(() => view.get('bad name')).toThrow(TypeError);
  });

  it('iterates like the full copy, and a write is seen by later reads', () => {
    const view = new MetadataHeaders(metadata());
    expect([...view]).toEqual([...metadataToHeaders(metadata())]);
    const seen: [string, string, unknown][] = [];
    view.forEach((v, k, parent) => seen.push([k, v, parent]));
    expect(seen.every(([, , p]) => p === view)).toBe(true);
    expect(new Headers(view).get('authorization')).toBe('Bearer abc');
    view.set('authorization', 'Bearer other');
    view.delete('user-agent');
    expect(view.get('authorization')).toBe('Bearer other');
    expect(view.has('user-agent')).toBe(false);
  });
});
