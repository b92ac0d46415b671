import type http from 'node:http';
import { describe, expect, it } from 'vitest';
import { NodeRequestHeaders, nodeHeadersToHeaders } from './connect-unary.js';

const sample = (): http.IncomingHttpHeaders => ({
  authorization: 'Bearer abc',
  'user-agent': 'orders/1.0 node',
  'x-forwarded-for': '10.0.0.1, 10.0.0.2',
  'set-cookie': ['a=1', 'b=2'],
  'x-padded': ' \tspaced\t ',
  empty: '',
});

describe('NodeRequestHeaders', () => {
  it('answers get and has exactly as the Headers copy connect-node makes', () => {
    const view = new NodeRequestHeaders(sample());
    const copy = nodeHeadersToHeaders(sample());
    for (const name of ['authorization', 'Authorization', 'USER-AGENT', 'x-forwarded-for', 'set-cookie', 'x-padded', 'empty', 'absent']) {
      expect(view.get(name), name).toBe(copy.get(name));
      expect(view.has(name), name).toBe(copy.has(name));
    }
  });

  it('rejects names Headers rejects, iterates like the copy, and sees its own writes', () => {
    const view = new NodeRequestHeaders(sample());
    expect(() => view.get('bad name')).toThrow(TypeError);
    expect([...view]).toEqual([...nodeHeadersToHeaders(sample())]);
    view.set('authorization', 'Bearer other');
    expect(view.get('authorization')).toBe('Bearer other');
  });
});
