import { describe, expect, it } from 'vitest';
import { CallerCredentials } from './caller-credentials.js';

const clients = [
  { name: 'orders', secret: 'orders-secret-0123456789abcdef' },
  { name: 'billing', secret: 'billing-secret-0123456789abcdef' },
];

describe('CallerCredentials', () => {
  it('names the caller of a good secret, every time', () => {
    const c = new CallerCredentials(clients);
    for (let i = 0; i < 3; i++) {
      expect(c.authenticate('orders-secret-0123456789abcdef')).toBe('orders');
      expect(c.authenticate('billing-secret-0123456789abcdef')).toBe('billing');
    }
    expect(c.remembered).toBe(2);
  });

  it('rejects a wrong secret every time, also once a good one is remembered, and never remembers it', () => {
    const c = new CallerCredentials(clients);
    expect(c.authenticate('orders-secret-0123456789abcdef')).toBe('orders');
    const wrong = ['', 'orders-secret-0123456789abcde', 'orders-secret-0123456789abcdef ', 'ORDERS-SECRET-0123456789ABCDEF', 'x'];
    for (let round = 0; round < 2; round++) {
      for (const w of wrong) {
        expect(() => c.authenticate(w)).toThrow(expect.objectContaining({ id: 'ERR_CALLER_UNAUTHENTICATED' }));
      }
    }
    for (let i = 0; i < 5000; i++) expect(() => c.authenticate(`guess-${i}`)).toThrow();
    expect(c.remembered).toBe(1);
  });
});
