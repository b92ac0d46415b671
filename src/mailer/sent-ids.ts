/**
 * Event ids this process has already mailed, oldest forgotten first. JetStream redelivers a
 * message whose ack was lost or came after the ack wait; this set keeps such a redelivery from
 * becoming a second mail. It lives in memory only: after a crash, the mails that were in flight
 * (sent, not yet acked) can be sent once more.
 */
export class SentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 10_000) {}

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    this.ids.delete(id);
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value!);
  }
}
