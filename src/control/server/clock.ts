// Time for the push pipeline behind a small interface, so debounce and convergence tests run on a fake clock.

export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds, monotonic enough for durations (the system clock uses performance.now()). */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
