import { defineEntity, type InferEntity } from '@mikro-orm/core';

/** One single-use backup code; only its Argon2id hash is stored (M5). */
export const BackupCodeEntity = defineEntity({
  name: 'BackupCode',
  tableName: 'backup_codes',
  properties: (p) => ({
    id: p.uuid().primary(),
    userId: p.uuid().index(),
    /** Argon2id PHC string of the canonical code. */
    codeHash: p.text(),
    usedAt: p.datetime().nullable(),
    createdAt: p.datetime(),
  }),
});

export type BackupCode = InferEntity<typeof BackupCodeEntity>;
