// Serves the CNI binary's requests on a unix socket (see protocol.ts). The
// socket is created mode 0600: only root on the node may wire pods.
import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { decodeRequest, encodeReply, type CniReply, type CniRequest } from './protocol.ts';

const MAX_REQUEST_BYTES = 2 * 1024 * 1024;
/** A client that sends nothing for this long while its request is incomplete is dropped. */
const REQUEST_IDLE_MS = 10_000;

export async function serveCni(
  socketPath: string,
  handle: (request: CniRequest) => Promise<CniReply>,
  log: (line: string) => void,
): Promise<Server> {
  await rm(socketPath, { force: true });
  let lastStatus: number | undefined;
  // allowHalfOpen: the binary shuts down its write side to mark the end of
  // the request, and the reply still has to go out after that.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const chunks: Buffer[] = [];
    let size = 0;
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) socket.destroy(new Error('CNI request too large'));
      else chunks.push(chunk);
    });
    socket.on('error', (error) => log(`cni: connection error: ${error.message}`));
    // The binary reads stdin before it connects, so a request arrives at
    // once; one that never ends must not hold a connection forever.
    socket.setTimeout(REQUEST_IDLE_MS, () => socket.destroy(new Error(`no complete request within ${REQUEST_IDLE_MS / 1000} s`)));
    socket.on('end', () => {
      socket.setTimeout(0); // the answer takes as long as the work it does
      let request: CniRequest;
      try {
        request = decodeRequest(Buffer.concat(chunks));
      } catch (error) {
        socket.end(encodeReply({ exitCode: 1, stdout: JSON.stringify({ cniVersion: '1.1.0', code: 6, msg: (error as Error).message }) }));
        return;
      }
      void handle(request).then((reply) => {
        // The runtime asks STATUS every few hundred ms: only a change of its answer is worth a line.
        const command = request.env.CNI_COMMAND ?? '?';
        if (command !== 'STATUS' || reply.exitCode !== lastStatus) log(`cni: ${command} ${request.env.CNI_CONTAINERID ?? ''} -> exit ${reply.exitCode}`);
        if (command === 'STATUS') lastStatus = reply.exitCode;
        socket.end(encodeReply(reply));
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  await chmod(socketPath, 0o600);
  return server;
}
