// A list of change handlers where one handler that throws neither stops the others nor the store that notifies them.

export class ChangeListeners<T> {
  private readonly handlers = new Set<(value: T) => void>();

  constructor(private readonly owner: string) {}

  add(handler: (value: T) => void): () => void {
    // Wrapped so the same function can subscribe twice and unsubscribe each subscription on its own.
    const entry = (value: T): void => handler(value);
    this.handlers.add(entry);
    return () => {
      this.handlers.delete(entry);
    };
  }

  get size(): number {
    return this.handlers.size;
  }

  emit(value: T): void {
    for (const handler of [...this.handlers]) {
      try {
        handler(value);
      } catch (err) {
        // A consumer's bug must not leave the store half-notified; say so loudly and carry on.
        console.error(`${this.owner}: change handler failed:`, err);
      }
    }
  }
}
