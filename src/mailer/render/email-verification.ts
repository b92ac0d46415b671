import { timestampMs } from '@bufbuild/protobuf/wkt';
import type { EmailVerificationRequested } from '../../gen/identity/events/v1/events_pb.js';
import { composeMail, formatTime, type RenderedMail } from './mail.js';

/** The verification link is a credential like the reset link: it is in the body and nowhere else (never logged). */
export function renderEmailVerification(event: EmailVerificationRequested): RenderedMail {
  const expires = event.expiresAt ? formatTime(timestampMs(event.expiresAt)) : undefined;
  return composeMail(event.email, 'Confirm your email address', [
    { text: 'To confirm that this address belongs to your account, open this link:', href: event.verifyUrl },
    { text: expires ? `The link works once and expires at ${expires}. A newer verification mail replaces this one.` : 'The link works once. A newer verification mail replaces this one.' },
    { text: 'If you did not create an account, ignore this mail: the address stays unconfirmed.' },
  ]);
}
