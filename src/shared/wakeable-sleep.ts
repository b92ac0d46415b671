/**
 * A pause a loop can be woken from early: the outbox relay when an event is committed, the
 * mailer when it is told to stop.
 */
export class WakeableSleep {
  private wakeUp: (() => void) | undefined;

  /** Resolves after `ms`, or as soon as wake() is called. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wakeUp === done) this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  /** Ends the current pause, if any. */
  wake(): void {
    this.wakeUp?.();
  }
}
