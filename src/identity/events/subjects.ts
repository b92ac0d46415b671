/**
 * Event names and subjects live in src/shared/event-subjects.ts, so the identity process and the
 * mailer (which never imports src/identity) share one definition.
 */
export * from '../../shared/event-subjects.js';
