import { introspectionClient, type Introspect, type IntrospectionClientOptions } from './introspection-client.js';
import { enforce, type LatchPolicy } from './policy.js';
import { LatchAuthError, type LatchPrincipal } from './principal.js';
import { RevocationFeed, type RevocationFeedOptions } from './revocation.js';
import { TokenCache, type TokenCacheOptions } from './token-cache.js';

/** Anything that answers "who is this token?" (the local verifier is one); told of revocations too. */
export interface IntrospectSource {
  introspect: Introspect;
  revoked?(userId: string, notBeforeMs: number, sessionId?: string): void;
}

export interface LatchAuthOptions {
  /** How to ask Latch (baseUrl + credential), or a function of your own with the same contract. */
  introspection: IntrospectionClientOptions | IntrospectSource;
  cache?: TokenCacheOptions;
  /** Drop cached answers on Latch's sessions_revoked broadcast (docs/sdk.md). */
  revocation?: RevocationFeedOptions;
}

/** Verifies bearer tokens for a service: cached introspection, fail-closed, revocations over NATS. */
export class LatchAuth {
  private constructor(
    private readonly introspect: Introspect,
    readonly cache: TokenCache,
    private readonly feed: RevocationFeed | undefined,
  ) {}

  /** Resolves once the revocation subscription (if any) is confirmed by the NATS server. */
  static async create(o: LatchAuthOptions): Promise<LatchAuth> {
    const source: IntrospectSource = 'introspect' in o.introspection ? o.introspection : { introspect: introspectionClient(o.introspection) };
    const introspect = source.introspect.bind(source);
    const cache = new TokenCache(o.cache);
    const feed = o.revocation
      ? await RevocationFeed.start(o.revocation, {
          revoked: (userId, notBeforeMs, sessionId) => {
            source.revoked?.(userId, notBeforeMs, sessionId);
            cache.revoke(userId, sessionId);
          },
          live: (live) => cache.setTrusted(live),
        })
      : undefined;
    return new LatchAuth(introspect, cache, feed);
  }

  /** The principal of an active token; throws LatchAuthError unauthenticated or unavailable. */
  async verify(token: string): Promise<LatchPrincipal> {
    if (!token) throw new LatchAuthError('unauthenticated', 'no_token', 'a bearer token is required');
    const principal = await this.cache.get(token, this.introspect);
    if (!principal) throw new LatchAuthError('unauthenticated', 'inactive_token', 'the token is not active');
    return principal;
  }

  /** Reads `Bearer <token>` from an authorization header value, verifies it and applies the policy. */
  authorize(authorization: string | null | undefined, policy: LatchPolicy): Promise<LatchPrincipal> {
    try {
      const cached = this.authorizeCached(authorization, policy);
      if (cached) return Promise.resolve(cached);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.verify(bearerToken(authorization)).then((principal) => {
      enforce(policy, principal);
      return principal;
    });
  }

  /**
   * The warm path without a promise: the principal when the answer is cached and the policy holds,
   * undefined when Latch must be asked (call `authorize`); throws the refusal otherwise.
   */
  authorizeCached(authorization: string | null | undefined, policy: LatchPolicy): LatchPrincipal | undefined {
    const token = bearerToken(authorization);
    if (!token) throw new LatchAuthError('unauthenticated', 'no_token', 'a bearer token is required');
    const principal = this.cache.peek(token);
    if (principal === undefined) return undefined;
    if (principal === null) throw new LatchAuthError('unauthenticated', 'inactive_token', 'the token is not active');
    enforce(policy, principal);
    return principal;
  }

  /** Stops listening for revocations (the NATS connection stays the caller's). */
  async close(): Promise<void> {
    await this.feed?.close();
  }
}

/** The token of an `authorization: Bearer <token>` header value; "" when there is none. */
export function bearerToken(authorization: string | null | undefined): string {
  if (!authorization) return '';
  const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(authorization);
  return m ? m[1]! : '';
}
