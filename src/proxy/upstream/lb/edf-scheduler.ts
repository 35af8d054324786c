// Earliest-deadline-first scheduler, Envoy's EdfScheduler: each pick advances time to the entry's deadline and re-adds it at +1/weight.

interface Entry<T> {
  deadline: number;
  order: number;
  item: T;
}

export class EdfScheduler<T> {
  private readonly heap: Entry<T>[] = [];
  private currentTime = 0;
  private order = 0;

  get size(): number {
    return this.heap.length;
  }

  add(item: T, weight: number): void {
    this.push({ deadline: this.currentTime + 1 / weight, order: this.order++, item });
  }

  /** Picks the entry with the earliest deadline (ties: the earliest added) and re-adds it with `weightOf(item)`. */
  pickAndAdd(weightOf: (item: T) => number): T | undefined {
    const top = this.heap[0];
    if (!top) return undefined;
    this.pop();
    this.currentTime = top.deadline;
    const w = weightOf(top.item);
    if (w > 0) {
      top.deadline = this.currentTime + 1 / w;
      top.order = this.order++;
      this.push(top);
    }
    return top.item;
  }

  private less(a: Entry<T>, b: Entry<T>): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.order < b.order);
  }

  private push(e: Entry<T>): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
