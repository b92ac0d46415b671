import { UserEntity } from '../account/user.entity.js';
import { OutboxEntity } from '../events/outbox.entity.js';
import { RefreshTokenEntity } from '../session/refresh-token.entity.js';
import { SessionEntity } from '../session/session.entity.js';
import { SigningKeyEntity } from '../token/signing-key.entity.js';
import { BackupCodeEntity } from '../mfa/backup-code.entity.js';
import { MfaChallengeEntity } from '../mfa/mfa-challenge.entity.js';
import { TotpCredentialEntity } from '../mfa/totp-credential.entity.js';

/** Every entity the identity service maps; the MikroORM config registers exactly these. */
export const entities = [
  UserEntity,
  SessionEntity,
  RefreshTokenEntity,
  SigningKeyEntity,
  OutboxEntity,
  TotpCredentialEntity,
  BackupCodeEntity,
  MfaChallengeEntity,
];
