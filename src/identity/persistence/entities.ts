import { UserEntity } from '../account/user.entity.js';
import { OutboxEntity } from '../events/outbox.entity.js';
import { RefreshTokenEntity } from '../session/refresh-token.entity.js';
import { SessionEntity } from '../session/session.entity.js';
import { SigningKeyEntity } from '../token/signing-key.entity.js';

/** Every entity the identity service maps; the MikroORM config registers exactly these. */
export const entities = [UserEntity, SessionEntity, RefreshTokenEntity, SigningKeyEntity, OutboxEntity];
