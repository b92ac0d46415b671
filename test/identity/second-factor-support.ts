import { fromBinary } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { SecurityAlertKind, SecurityAlertSchema } from '../../src/gen/identity/events/v1/events_pb.js';
import { base32Decode } from '../../src/identity/mfa/base32.js';
import { generateTotp } from '../../src/identity/mfa/totp.js';
import { bearer, signUp, type Clients, type TestIdentity } from '../helpers/identity.js';

export { SecurityAlertKind };

export const codeOf = (e: unknown) => ConnectError.from(e).code;
/** LatchError.id as sent in the `latch-error-id` response metadata. */
export const errorIdOf = (e: unknown) => ConnectError.from(e).metadata.get('latch-error-id');

export interface EnrolledUser {
  email: string;
  password: string;
  userId: string;
  accessToken: string;
  refreshToken: string;
  backupCodes: string[];
  /** The code for now + `offsetSteps` steps. */
  totp(offsetSteps?: number): string;
  /** A well-formed code valid for no step within ±2 of now. */
  wrong(): string;
}

/** Signs up, enrolls TOTP over the wire (with the password, M7) and confirms with the current code. */
export async function enrollOverRpc(c: Clients): Promise<EnrolledUser> {
  const u = await signUp(c);
  const token = u.session.accessToken;
  const begin = await c.auth.beginTotpEnrollment({ currentPassword: u.password }, bearer(token));
  const key = base32Decode(begin.secret);
  const totp = (offsetSteps = 0) => generateTotp(key, Date.now() + offsetSteps * 30_000);
  const confirm = await c.auth.confirmTotpEnrollment({ code: totp() }, bearer(token));
  const wrong = () => {
    const valid = new Set([-2, -1, 0, 1, 2].map((s) => totp(s)));
    for (let n = 0; ; n++) {
      const candidate = String((n * 111_111) % 1_000_000).padStart(6, '0');
      if (!valid.has(candidate)) return candidate;
    }
  };
  return {
    email: u.email,
    password: u.password,
    userId: u.session.user!.id,
    accessToken: token,
    refreshToken: u.session.refreshToken,
    backupCodes: confirm.backupCodes,
    totp,
    wrong,
  };
}

export async function mfaChallenge(c: Clients, email: string, password: string): Promise<string> {
  const res = await c.auth.login({ email, password });
  if (res.result.case !== 'mfaChallenge') throw new Error(`expected an MFA challenge, got ${res.result.case}`);
  return res.result.value.challengeToken;
}

/** The security alerts of one user in the outbox, oldest first. */
export async function securityAlerts(t: TestIdentity, userId: string): Promise<SecurityAlertKind[]> {
  const rows: Array<{ payload: Buffer }> = await t.app.internals.db.orm.em
    .fork()
    .execute(`select payload from outbox where subject = 'security_alert' order by seq`);
  return rows.map((r) => fromBinary(SecurityAlertSchema, r.payload)).filter((a) => a.userId === userId).map((a) => a.kind);
}

/** Runs `fn` over `items` with at most `limit` in flight (sign-ins hash; the machine is shared). */
export async function pooled<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

export { Code };
