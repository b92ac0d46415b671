import { timestampMs } from '@bufbuild/protobuf/wkt';
import { SecurityAlertKind, type SecurityAlert } from '../../gen/identity/events/v1/events_pb.js';
import { composeMail, formatTime, type Paragraph, type RenderedMail } from './mail.js';

interface AlertText {
  subject: string;
  /** What happened, as one sentence. */
  happened: string;
  /** What to do if it was not the account holder. */
  ifNotYou: string;
}

const CHANGE_PASSWORD = 'If this was not you, change your password now and review your signed-in sessions.';

/** One entry per alert kind of the contract (proto/identity/events/v1/events.proto). */
const ALERTS: Record<Exclude<SecurityAlertKind, SecurityAlertKind.UNSPECIFIED>, AlertText> = {
  [SecurityAlertKind.REFRESH_TOKEN_REUSE]: {
    subject: 'Security alert: a signed-in session was ended',
    happened:
      'A sign-in token of your account was used twice, which happens when a copy of it is in someone else\u2019s hands. We ended that session to protect you.',
    ifNotYou: `You may need to sign in again on that device. ${CHANGE_PASSWORD}`,
  },
  [SecurityAlertKind.PASSWORD_CHANGED]: {
    subject: 'Your password was changed',
    happened: 'The password of your account was changed.',
    ifNotYou: 'If this was not you, reset your password at once and contact support: someone else may have access to your account.',
  },
  [SecurityAlertKind.PASSWORD_RESET]: {
    subject: 'Your password was reset',
    happened: 'The password of your account was reset with a reset link, and your other sessions were signed out.',
    ifNotYou: 'If this was not you, reset your password again and contact support: someone may be able to read your email.',
  },
  [SecurityAlertKind.TOTP_ENABLED]: {
    subject: 'Two-step verification was turned on',
    happened: 'An authenticator app was set up as a second step for signing in to your account.',
    ifNotYou: `${CHANGE_PASSWORD} Then contact support to remove the authenticator someone else added.`,
  },
  [SecurityAlertKind.TOTP_DISABLED]: {
    subject: 'Two-step verification was turned off',
    happened: 'Two-step verification was turned off for your account: a password alone now signs in.',
    ifNotYou: `${CHANGE_PASSWORD} Then turn two-step verification on again.`,
  },
  [SecurityAlertKind.BACKUP_CODE_USED]: {
    subject: 'A backup code was used to sign in',
    happened: 'One of your backup codes was used instead of your authenticator app to sign in.',
    ifNotYou: `${CHANGE_PASSWORD} Then create new backup codes, which voids the old ones.`,
  },
  [SecurityAlertKind.BACKUP_CODES_REGENERATED]: {
    subject: 'New backup codes were created',
    happened: 'New backup codes were created for your account; the previous ones no longer work.',
    ifNotYou: CHANGE_PASSWORD,
  },
  [SecurityAlertKind.ACCOUNT_LOCKED]: {
    subject: 'Sign-in to your account was paused',
    happened: 'Too many wrong passwords were tried for your account, so signing in was paused for a while.',
    ifNotYou: 'If these attempts were not yours, someone may be guessing your password: choose a long, unique one when you can sign in again.',
  },
  [SecurityAlertKind.MFA_LOCKED]: {
    subject: 'Two-step sign-in was paused',
    happened: 'Too many wrong verification codes were entered after your password, so signing in was paused for a while.',
    ifNotYou: 'Whoever tried knew your password. Change it as soon as you can sign in again.',
  },
  [SecurityAlertKind.SECOND_FACTOR_RESET]: {
    subject: 'Two-step verification was reset',
    happened: 'An administrator removed the two-step verification of your account.',
    ifNotYou: 'If you did not ask for this, contact support, then set up two-step verification again.',
  },
};

export function isRenderableAlertKind(kind: SecurityAlertKind): kind is keyof typeof ALERTS {
  return Object.hasOwn(ALERTS, kind);
}

/** Undefined for a kind this mailer does not know (a newer producer): the caller dead-letters it. */
export function renderSecurityAlert(alert: SecurityAlert): RenderedMail | undefined {
  if (!isRenderableAlertKind(alert.kind)) return undefined;
  const t = ALERTS[alert.kind];
  const when = alert.occurredAt ? formatTime(timestampMs(alert.occurredAt)) : 'just now';
  const where = [alert.clientIp && `address ${alert.clientIp}`, alert.userAgent && `device \u201c${alert.userAgent}\u201d`]
    .filter(Boolean)
    .join(', ');
  const paragraphs: Paragraph[] = [
    { text: t.happened },
    { text: `When: ${when}${where ? `. From: ${where}` : ''}.` },
    { text: t.ifNotYou },
    { text: 'If this was you, there is nothing to do.' },
  ];
  return composeMail(alert.email, t.subject, paragraphs);
}
