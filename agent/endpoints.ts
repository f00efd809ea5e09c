// The node's endpoints (pods wired by the CNI plugin), persisted one JSON
// file per endpoint under the state directory so that a restarted agent
// knows its pods without asking anyone. The CNI handler adds and removes
// them; the policy sync reads them.
import { mkdir, readdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Endpoint, EndpointEvents } from './cni/handler.ts';

export class EndpointRegistry implements EndpointEvents {
  readonly #dir: string;
  readonly #byHostIf = new Map<string, Endpoint>();
  readonly #listeners: Array<() => void> = [];

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async open(dir: string): Promise<EndpointRegistry> {
    const registry = new EndpointRegistry(dir);
    await mkdir(dir, { recursive: true });
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json')) continue;
      const endpoint = JSON.parse(await readFile(join(dir, name), 'utf8')) as Endpoint;
      registry.#byHostIf.set(endpoint.hostIfName, endpoint);
    }
    return registry;
  }

  list(): Endpoint[] {
    return [...this.#byHostIf.values()];
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  async added(endpoint: Endpoint): Promise<void> {
    const file = join(this.#dir, `${endpoint.hostIfName}.json`);
    await writeFile(`${file}.tmp`, JSON.stringify(endpoint));
    await rename(`${file}.tmp`, file);
    this.#byHostIf.set(endpoint.hostIfName, endpoint);
    for (const listener of this.#listeners) listener();
  }

  async removed(endpoint: Pick<Endpoint, 'hostIfName'>): Promise<void> {
    await rm(join(this.#dir, `${endpoint.hostIfName}.json`), { force: true });
    if (this.#byHostIf.delete(endpoint.hostIfName)) for (const listener of this.#listeners) listener();
  }
}
