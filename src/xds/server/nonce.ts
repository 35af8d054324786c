// Response nonces: unique per stream and distinct across streams, so a nonce from an earlier stream never matches by accident.

export class NonceSequence {
  private counter = 0;

  constructor(private readonly streamId: string) {}

  next(): string {
    this.counter++;
    return `${this.counter.toString(36)}.${this.streamId}`;
  }
}
