// Publishes what the agent has realized as the status of its PalisadeNode
// object (crds/palisadenodes.yaml). Writes are coalesced: at most one is in
// flight, and the newest report wins, so a burst of syncs costs one or two
// API writes.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { CoalescingTask } from '../lib/coalescing-task.ts';

const GROUP = 'palisade.io';
const VERSION = 'v1alpha1';
const PLURAL = 'palisadenodes';

export interface RealizedStatus {
  revision: number;
  endpoints: number;
  /** Per watched kind (Pod, Namespace, NetworkPolicy, SecurityIdentity): resourceVersion enforced. */
  realized: Record<string, string>;
  pendingIdentities: number;
  ready: boolean;
  message: string;
}

export class StatusReporter {
  readonly #api: CustomObjectsApi;
  readonly #node: string;
  readonly #task: CoalescingTask;
  #latest: RealizedStatus | undefined;
  #lastReady: boolean | undefined;
  #transition = new Date();

  constructor(kubeconfig: KubeConfig, node: string, log: (line: string) => void) {
    this.#api = kubeconfig.makeApiClient(CustomObjectsApi);
    this.#node = node;
    this.#task = new CoalescingTask(() => this.#write(), {
      onError: (error) => log(`status: write failed, retrying: ${(error as Error).message}`),
    });
  }

  /** Creates this node's PalisadeNode if it does not exist yet. */
  async register(): Promise<void> {
    try {
      await this.#api.createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'PalisadeNode', metadata: { name: this.#node }, spec: {} },
      });
    } catch (error) {
      if ((error as { code?: number }).code !== 409) throw error;
    }
  }

  report(status: RealizedStatus): void {
    this.#latest = status;
    this.#task.request();
  }

  idle(): Promise<void> {
    return this.#task.idle();
  }

  async #write(): Promise<void> {
    const status = this.#latest;
    if (!status) return;
    if (status.ready !== this.#lastReady) {
      this.#lastReady = status.ready;
      this.#transition = new Date();
    }
    const { ready, message, ...rest } = status;
    await this.#api.patchClusterCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        name: this.#node,
        body: {
          status: {
            ...rest,
            conditions: [
              { type: 'Ready', status: ready ? 'True' : 'False', reason: ready ? 'Enforcing' : 'Degraded', message, lastTransitionTime: this.#transition.toISOString() },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}
