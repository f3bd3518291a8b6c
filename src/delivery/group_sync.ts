// Group commit of directory fsyncs. A rename into new/ is durable once new/ has been fsync'd
// after it; one fsync covers every rename done before it started. So concurrent deliveries
// into one Maildir share fsyncs: a caller joins the queue of its directory and is answered by
// the first fsync that starts after it joined. If one is running, the caller waits for the
// next (the running one may have started before its rename). With 10 sessions on one
// mailbox that is up to 10× fewer directory fsyncs, and 250 still means "on disk".

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

export class GroupSync {
  /** Directories with an fsync running; the callers waiting for the next one. */
  readonly #queues = new Map<string, Waiter[]>();

  /** @param syncDir fsyncs one directory (Maildirs passes its own; tests count the calls) */
  constructor(private readonly syncDir: (dir: string) => Promise<void>) {}

  /** Resolves after an fsync of `dir` that started after this call; rejects if that fsync fails. */
  sync(dir: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const queue = this.#queues.get(dir);
      if (queue !== undefined) {
        queue.push({ resolve, reject });
        return;
      }
      this.#queues.set(dir, [{ resolve, reject }]);
      void this.#drain(dir);
    });
  }

  /** fsync while anyone waits: each round answers exactly the callers queued before it began. */
  async #drain(dir: string): Promise<void> {
    for (;;) {
      const batch = this.#queues.get(dir)!;
      if (batch.length === 0) {
        this.#queues.delete(dir);
        return;
      }
      this.#queues.set(dir, []);
      try {
        await this.syncDir(dir);
        for (const w of batch) w.resolve();
      } catch (e) {
        for (const w of batch) w.reject(e);
      }
    }
  }
}
