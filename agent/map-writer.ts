// Writes planned steps (map-writes.ts) to the kernel maps through the loader,
// one batch per step, in order; `done` is told after each step succeeded, so
// a caller can track what the maps hold even when a later step fails.
import type { Loader } from '../datapath/loader-client.ts';
import type { WriteStep } from './map-writes.ts';

export async function writeSteps(loader: Loader, steps: readonly WriteStep[], done: (step: WriteStep) => void = () => undefined): Promise<void> {
  for (const step of steps) {
    if (step.op === 'update') await loader.update(step.map, step.entries.map((e) => ({ key: Buffer.from(e.key, 'hex'), value: Buffer.from(e.value, 'hex') })));
    else await loader.delete(step.map, step.entries.map((e) => Buffer.from(e.key, 'hex')));
    done(step);
  }
}
