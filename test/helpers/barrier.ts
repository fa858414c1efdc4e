/**
 * An in-process barrier for concurrency tests: `arrive()` resolves once `parties` callers have
 * arrived, so every writer can be made to read before any of them writes.
 */
export interface Barrier {
  arrive(): Promise<void>;
}

export function barrier(parties: number): Barrier {
  let arrived = 0;
  let release!: () => void;
  const open = new Promise<void>((resolve) => (release = resolve));
  return {
    arrive() {
      arrived += 1;
      if (arrived >= parties) release();
      return open;
    },
  };
}
