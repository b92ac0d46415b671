import { defineEntity, type InferEntity } from '@mikro-orm/core';

/** An event written in the same transaction as the change it reports (E1). */
export const OutboxEntity = defineEntity({
  name: 'OutboxEvent',
  tableName: 'outbox',
  properties: (p) => ({
    /** Also the Nats-Msg-Id, so a re-publish is dropped by JetStream's duplicate window. */
    id: p.uuid().primary(),
    subject: p.string(),
    /** Protobuf bytes of a message from proto/identity/events/v1. */
    payload: p.blob(),
    createdAt: p.datetime(),
    publishedAt: p.datetime().nullable(),
    attempts: p.integer().default(0),
    nextAttemptAt: p.datetime(),
    lastError: p.text().nullable(),
  }),
});

export type OutboxEvent = InferEntity<typeof OutboxEntity>;
