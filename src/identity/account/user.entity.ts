import { defineEntity, type InferEntity } from '@mikro-orm/core';
import { totpEnabledSql } from '../mfa/mfa-store.js';

export const ROLES = ['user', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const UserEntity = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: (p) => ({
    id: p.uuid().primary(),
    email: p.string().columnType('citext').unique(),
    passwordHash: p.text(),
    role: p.string().$type<Role>().default('user'),
    disabled: p.boolean().default(false),
    passwordMustChange: p.boolean().default(false),
    /** When the owner proved the address (AuthService.VerifyEmail); null while unverified. */
    emailVerifiedAt: p.datetime().nullable(),
    /** Access tokens issued before this instant are inactive (logout-everywhere, revocation). */
    tokensValidAfter: p.datetime(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
    /** Read with the row (no second round trip); mfa/ owns the question. Never written. */
    totpEnabled: p.formula<boolean>((table) => totpEnabledSql(`${table.alias}.id`)).type('boolean').nullable(),
  }),
});

export type User = InferEntity<typeof UserEntity>;
