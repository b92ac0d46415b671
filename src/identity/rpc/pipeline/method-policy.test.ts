import { describe, it, expect } from 'vitest';
import type { DescService } from '@bufbuild/protobuf';
import { AuthService } from '../../../gen/identity/v1/auth_pb.js';
import { AdminService } from '../../../gen/identity/v1/admin_pb.js';
import { TokenIntrospectionService } from '../../../gen/identity/v1/introspection_pb.js';
import { methodPolicies, policyFor, policyKey } from './method-policy.js';

const services: DescService[] = [AuthService, AdminService, TokenIntrospectionService];

describe('method policy table', () => {
  it('has an explicit entry for every generated method, and no stale ones', () => {
    const generated = services.flatMap((s) => s.methods.map((m) => policyKey(s, m)));
    const missing = generated.filter((k) => !Object.hasOwn(methodPolicies, k));
    expect(missing).toEqual([]);
    expect(Object.keys(methodPolicies).sort()).toEqual([...generated].sort());
  });

  it('matches the documented auth of each method', () => {
    const p = (s: DescService, name: string) => policyFor(s, s.methods.find((m) => m.name === name)!);
    expect(p(AuthService, 'Login')).toEqual({ auth: 'none' });
    expect(p(AuthService, 'ChangePassword')).toEqual({ auth: 'user', allowWhilePasswordMustChange: true });
    expect(p(AuthService, 'RevokeSession').allowWhilePasswordMustChange).toBeFalsy();
    expect(p(TokenIntrospectionService, 'Introspect').auth).toBe('caller');
    expect(p(TokenIntrospectionService, 'GetJwks').auth).toBe('none');
    for (const m of AdminService.methods) expect(policyFor(AdminService, m).auth).toBe('admin');
    const allowed = AuthService.methods.filter((m) => policyFor(AuthService, m).allowWhilePasswordMustChange);
    expect(allowed.map((m) => m.name).sort()).toEqual(['ChangePassword', 'GetCurrentUser', 'LogoutAll']);
  });

  it('fails closed for an unknown method', () => {
    const m = TokenIntrospectionService.methods[0]!;
    expect(policyFor(TokenIntrospectionService, m, {})).toEqual({ auth: 'user' });
  });
});
