// Heap in use after a full collection, for benchmarks that report memory.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gcFunction: (() => void) | undefined;

function gc(): void {
  if (!gcFunction) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
  gcFunction();
}

/** Bytes of heap in use after two full collections. */
export function heapUsed(): number {
  gc();
  return process.memoryUsage().heapUsed;
}
