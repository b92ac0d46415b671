/** Correctness checks of a run: a figure measured on wrong answers is worthless, so each is reported. */

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

export class Checks {
  readonly list: CheckResult[] = [];

  constructor(private readonly log: (msg: string) => void) {}

  check(name: string, ok: boolean, detail: string): boolean {
    this.list.push({ name, ok, detail });
    this.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
    return ok;
  }

  get allOk(): boolean {
    return this.list.every((c) => c.ok);
  }
}
