import { timestampMs } from '@bufbuild/protobuf/wkt';
import type { PasswordResetRequested } from '../../gen/identity/events/v1/events_pb.js';
import { composeMail, formatTime, type RenderedMail } from './mail.js';

/** The one mail that carries a secret: the link is in the body and nowhere else (never logged). */
export function renderPasswordReset(event: PasswordResetRequested): RenderedMail {
  const expires = event.expiresAt ? formatTime(timestampMs(event.expiresAt)) : undefined;
  return composeMail(event.email, 'Reset your password', [
    { text: 'Someone asked to reset the password of your account. To choose a new password, open this link:', href: event.resetUrl },
    { text: expires ? `The link works once and expires at ${expires}.` : 'The link works once.' },
    { text: 'If you did not ask for this, ignore this mail: your password stays as it is.' },
  ]);
}
