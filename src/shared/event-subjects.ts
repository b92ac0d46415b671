/**
 * Event names and the JetStream subjects they travel on (docs/api.md "Events"), shared by the
 * identity process (which publishes them) and the mailer (which consumes some of them).
 *
 * The outbox stores the relative name so that the stream and prefix stay deployment settings:
 * tests run against their own random prefix and stream on a shared server without colliding.
 */
export const EventName = {
  passwordResetRequested: 'password_reset_requested',
  emailVerificationRequested: 'email_verification_requested',
  securityAlert: 'security_alert',
  sessionsRevoked: 'sessions_revoked',
} as const;

export type EventName = (typeof EventName)[keyof typeof EventName];

export const DEFAULT_SUBJECT_PREFIX = 'identity.events';
export const DEFAULT_STREAM_NAME = 'IDENTITY_EVENTS';

const NAMES: ReadonlySet<string> = new Set(Object.values(EventName));

export function isEventName(value: string): value is EventName {
  return NAMES.has(value);
}

/** `identity.events.security_alert` for the default prefix. */
export function subjectFor(name: EventName, prefix: string = DEFAULT_SUBJECT_PREFIX): string {
  return `${prefix}.${name}`;
}

/** The stream's subject filter: every event under the prefix. */
export function streamSubjects(prefix: string = DEFAULT_SUBJECT_PREFIX): string {
  return `${prefix}.>`;
}

/** The event name of a full subject, or undefined when it is not one of ours. */
export function eventNameOf(subject: string, prefix: string = DEFAULT_SUBJECT_PREFIX): EventName | undefined {
  if (!subject.startsWith(`${prefix}.`)) return undefined;
  const name = subject.slice(prefix.length + 1);
  return isEventName(name) ? name : undefined;
}

/**
 * Where the mailer puts an event it cannot deliver (a permanent SMTP refusal, an undecodable
 * payload, retries exhausted): inside the prefix, so the same stream keeps it for an operator.
 * `identity.events.dead_letter.mail` for the default prefix; no event name starts with it.
 */
export function mailDeadLetterSubject(prefix: string = DEFAULT_SUBJECT_PREFIX): string {
  return `${prefix}.dead_letter.mail`;
}
