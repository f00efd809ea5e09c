// The worker thread that writes followers' JSON lines (flow-lines.ts): a
// batch of encoded flows in (flow-codec.ts), its lines out as UTF-8 bytes,
// moved back to the main thread without a copy.
import { parentPort } from 'node:worker_threads';
import { FlowLineWriter, type EncodedBatch } from './flow-codec.ts';

const writer = new FlowLineWriter();
const utf8 = new TextEncoder();

parentPort!.on('message', ({ id, batch }: { id: number; batch: EncodedBatch }) => {
  try {
    const bytes = utf8.encode(writer.lines(batch));
    parentPort!.postMessage({ id, bytes }, [bytes.buffer as ArrayBuffer]);
  } catch (error) {
    parentPort!.postMessage({ id, error: (error as Error).message });
  }
});
