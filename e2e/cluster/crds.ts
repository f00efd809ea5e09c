// Installs Palisade's CustomResourceDefinitions (every YAML file in crds/)
// and waits until the API server serves them.
import { readdir, readFile } from 'node:fs/promises';
import { ApiextensionsV1Api, type KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { REPO_ROOT } from './paths.ts';
import { waitFor } from './processes.ts';

export async function installCrds(kubeconfig: KubeConfig): Promise<void> {
  const api = kubeconfig.makeApiClient(ApiextensionsV1Api);
  const dir = `${REPO_ROOT}crds`;
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml'));
  const crds = await Promise.all(files.map(async (f) => parse(await readFile(`${dir}/${f}`, 'utf8')) as V1CustomResourceDefinition));
  await Promise.all(crds.map((body) => api.createCustomResourceDefinition({ body })));
  for (const crd of crds) {
    const name = crd.metadata!.name!;
    await waitFor(
      `CRD ${name} established`,
      async () => {
        const current = await api.readCustomResourceDefinition({ name });
        if (!current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) throw new Error('not established');
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  }
}
