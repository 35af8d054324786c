// Timeouts of one fixed duration shared by many short-lived owners: the proxy's route timeout and stream idle timeout,
// armed on every request and cancelled a millisecond later when the response ends.
//
// Why not setTimeout per request: Node keeps one timer list per duration and deletes the list when its last timer is
// cleared, so at a few thousand requests per second with only a handful in flight the same list is created, inserted
// into the timer priority queue, emptied and deleted over and over (`timerListMap[ms]` becomes a dictionary; the
// profile showed DeleteProperty and KeyedStoreIC_Slow under clearTimeout/setTimeout, ~2% of the proxy's CPU;
// docs/performance.md, step 14). Here one list per duration lives for the process: adding is an append (deadlines of
// one duration arrive in order), cancelling an unlink, and one Node timer per list is armed for the earliest deadline
// and re-armed when it fires. A cancelled head leaves the timer to fire early once and re-arm: cheaper than a
// clearTimeout per cancel. Times come from performance.now() (monotonic), so the order holds when the wall clock moves.

/** A scheduled deadline; `cancel()` is idempotent. */
export interface Deadline {
  cancel(): void;
}

class ListEntry implements Deadline {
  prev: ListEntry | undefined;
  next: ListEntry | undefined;
  linked = true;
  constructor(
    readonly list: DeadlineList,
    readonly at: number,
    readonly onExpire: () => void,
  ) {}
  cancel(): void {
    if (this.linked) this.list.unlink(this);
  }
}

class TimerEntry implements Deadline {
  constructor(private readonly timer: NodeJS.Timeout) {}
  cancel(): void {
    clearTimeout(this.timer);
  }
}

export class DeadlineList {
  private head: ListEntry | undefined;
  private tail: ListEntry | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Entries currently linked (for tests and the admin's curiosity). */
  size = 0;

  constructor(readonly durationMs: number) {}

  add(onExpire: () => void): Deadline {
    const entry = new ListEntry(this, performance.now() + this.durationMs, onExpire);
    const tail = this.tail;
    if (tail) {
      tail.next = entry;
      entry.prev = tail;
    } else {
      this.head = entry;
    }
    this.tail = entry;
    this.size++;
    if (!this.timer) this.arm(this.durationMs);
    return entry;
  }

  unlink(entry: ListEntry): void {
    entry.linked = false;
    const { prev, next } = entry;
    if (prev) prev.next = next;
    else this.head = next;
    if (next) next.prev = prev;
    else this.tail = prev;
    entry.prev = entry.next = undefined;
    this.size--;
  }

  private arm(ms: number): void {
    // The sockets keep the process alive, not these timers (as with the per-request timers they replace).
    (this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(ms)))).unref();
  }

  private fire(): void {
    this.timer = undefined;
    const now = performance.now();
    try {
      let entry = this.head;
      while (entry && entry.at <= now) {
        this.unlink(entry);
        entry.onExpire();
        entry = this.head;
      }
    } finally {
      // Re-armed even when a callback threw: with a timer each, the other owners' timeouts would still have fired.
      const head = this.head;
      if (head && !this.timer) this.arm(head.at - performance.now());
    }
  }
}

/** Lists by duration, for the durations configuration names (routes, connection managers); bounded. */
const lists = new Map<number, DeadlineList>();
const MAX_LISTS = 64;

/**
 * Calls `onExpire` after `ms` milliseconds unless cancelled. Durations share a list up to MAX_LISTS distinct ones; past
 * that (e.g. per-request durations from x-envoy-upstream-rq-timeout-ms), a plain unref'd Node timer.
 */
export function scheduleDeadline(ms: number, onExpire: () => void): Deadline {
  let list = lists.get(ms);
  if (!list) {
    if (lists.size >= MAX_LISTS) return scheduleTimer(ms, onExpire);
    list = new DeadlineList(ms);
    lists.set(ms, list);
  }
  return list.add(onExpire);
}

/** A plain unref'd Node timer behind the same interface, for one-off durations (a re-arm for what is left). */
export function scheduleTimer(ms: number, onExpire: () => void): Deadline {
  const timer = setTimeout(onExpire, ms);
  timer.unref();
  return new TimerEntry(timer);
}
