// Services and EndpointSlices -> the datapath's load-balancing table: which
// addresses are frontends, which endpoints back each port (as kube-proxy
// chooses them), and what is reported instead of translated.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Endpoint, V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { apiServerAddresses, serviceFrontends, type ServiceFrontend } from './services.ts';

type Spec = NonNullable<V1Service['spec']>;

const service = (name: string, spec: Partial<Spec> = {}, status: V1Service['status'] = {}, namespace = 'ns'): V1Service => ({
  metadata: { namespace, name },
  spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', port: 80, protocol: 'TCP' }], ...spec },
  status,
});

const slice = (
  serviceName: string,
  ports: V1EndpointSlice['ports'],
  endpoints: V1Endpoint[],
  { namespace = 'ns', addressType = 'IPv4' } = {},
): V1EndpointSlice => ({
  metadata: { namespace, name: `${serviceName}-${Math.random().toString(36).slice(2, 7)}`, labels: { 'kubernetes.io/service-name': serviceName } },
  addressType,
  ports,
  endpoints,
});

const ep = (ip: string, conditions?: V1Endpoint['conditions'], nodeName?: string): V1Endpoint => ({ addresses: [ip], conditions, nodeName });

const httpPort = [{ name: 'http', port: 8080, protocol: 'TCP' }];

/** `ip:port` of each backend of the frontend at ip:port/protocol, or undefined when there is no such frontend. */
function backendsAt(frontends: ServiceFrontend[], ip: string, port: number, protocol = 'TCP'): string[] | undefined {
  return frontends.find((f) => f.ip === ip && f.port === port && f.protocol === protocol)?.backends.map((b) => `${b.ip}:${b.port}`);
}

test('named Service ports take their backend port from the slice port of the same name and protocol, in every slice', () => {
  const svc = service('web', {
    ports: [
      { name: 'http', port: 80 }, // protocol defaults to TCP
      { name: 'metrics', port: 9090, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ],
  });
  const slices = [
    // A named targetPort can resolve to other numbers in other pods: each slice says its own.
    slice('web', [{ name: 'http', port: 8080 }, { name: 'metrics', port: 9100, protocol: 'TCP' }, { name: 'dns', port: 5353 }], [ep('10.0.1.10'), ep('10.0.1.9')]),
    // Ports listed in another order: matched by name, not position.
    slice('web', [{ name: 'metrics', port: 9101 }, { name: 'http', port: 8081, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }], [ep('10.0.2.1')]),
  ];
  const { frontends, problems } = serviceFrontends([svc], slices, 'n1');
  assert.deepEqual(problems, []);
  // Sorted by address as numbers (10.0.1.9 before 10.0.1.10), then port.
  assert.deepEqual(backendsAt(frontends, '10.96.0.10', 80), ['10.0.1.9:8080', '10.0.1.10:8080', '10.0.2.1:8081']);
  assert.deepEqual(backendsAt(frontends, '10.96.0.10', 9090), ['10.0.1.9:9100', '10.0.1.10:9100', '10.0.2.1:9101']);
  // The first slice's 'dns' port is TCP (by default): it does not serve the UDP Service port.
  assert.deepEqual(backendsAt(frontends, '10.96.0.10', 53, 'UDP'), ['10.0.2.1:53']);
});

test('an unnamed Service port matches a slice port whose name is absent, null or empty', () => {
  const svc = service('one', { ports: [{ port: 80 }] });
  const slices = [
    slice('one', [{ port: 8080 }], [ep('10.0.1.1')]),
    slice('one', [{ name: null as unknown as string, port: 8081 }], [ep('10.0.1.2')]),
    slice('one', [{ name: '', port: 8082 }], [ep('10.0.1.3')]),
    slice('one', [{ name: 'other', port: 8083 }], [ep('10.0.1.4')]),
  ];
  const { frontends } = serviceFrontends([svc], slices, 'n1');
  assert.deepEqual(backendsAt(frontends, '10.96.0.10', 80), ['10.0.1.1:8080', '10.0.1.2:8081', '10.0.1.3:8082']);
  assert.equal(frontends[0]!.portName, '');
});

test('which endpoints are used: the ready ones across all slices, else the serving terminating ones', () => {
  const rows: Array<[string, V1Endpoint[][], string[]]> = [
    // [what, endpoints of each slice, expected backend addresses]
    ['not-ready endpoints are left out while others are ready', [[ep('10.0.0.1', { ready: true }), ep('10.0.0.2', { ready: false })]], ['10.0.0.1']],
    ['absent conditions, or a ready that is absent or null, count as ready', [[ep('10.0.0.1'), ep('10.0.0.2', {}), ep('10.0.0.3', { ready: null as unknown as boolean })]], ['10.0.0.1', '10.0.0.2', '10.0.0.3']],
    [
      'with nothing ready, serving terminating endpoints are used (serving absent counts as serving)',
      [[ep('10.0.0.1', { ready: false, serving: true, terminating: true }), ep('10.0.0.2', { ready: false, terminating: true }), ep('10.0.0.3', { ready: false, serving: false, terminating: true }), ep('10.0.0.4', { ready: false, serving: true })]],
      ['10.0.0.1', '10.0.0.2'],
    ],
    [
      'one ready endpoint in another slice is enough to leave terminating ones out',
      [[ep('10.0.0.1', { ready: false, serving: true, terminating: true })], [ep('10.0.0.2', { ready: true })]],
      ['10.0.0.2'],
    ],
    ['nothing ready, serving or terminating: the frontend stays, with no backend (its traffic is dropped)', [[ep('10.0.0.1', { ready: false }), ep('10.0.0.2', { ready: false, serving: true })]], []],
    ['an address listed in two slices is one backend; an endpoint without addresses is none', [[ep('10.0.0.1')], [ep('10.0.0.1'), { addresses: [] }]], ['10.0.0.1']],
  ];
  for (const [what, perSlice, expected] of rows) {
    const { frontends } = serviceFrontends([service('web')], perSlice.map((eps) => slice('web', httpPort, eps)), 'n1');
    assert.deepEqual(backendsAt(frontends, '10.96.0.10', 80), expected.map((ip) => `${ip}:8080`), what);
  }
});

test('internalTrafficPolicy Local keeps this node’s endpoints for the cluster IPs, all of them for external and load-balancer IPs', () => {
  const local = (eps: V1Endpoint[]) =>
    serviceFrontends(
      [service('web', { internalTrafficPolicy: 'Local', externalIPs: ['192.0.2.1'] }, { loadBalancer: { ingress: [{ ip: '198.51.100.1' }] } })],
      [slice('web', httpPort, eps)],
      'n1',
    ).frontends;
  const mixed = local([ep('10.0.1.1', {}, 'n1'), ep('10.0.2.1', {}, 'n2'), ep('10.0.0.1', {})]);
  assert.deepEqual(backendsAt(mixed, '10.96.0.10', 80), ['10.0.1.1:8080']);
  assert.deepEqual(backendsAt(mixed, '192.0.2.1', 80), ['10.0.0.1:8080', '10.0.1.1:8080', '10.0.2.1:8080']);
  assert.deepEqual(backendsAt(mixed, '198.51.100.1', 80), ['10.0.0.1:8080', '10.0.1.1:8080', '10.0.2.1:8080']);

  // No endpoint on this node: in-cluster traffic to the cluster IP is dropped, not sent elsewhere.
  assert.deepEqual(backendsAt(local([ep('10.0.2.1', {}, 'n2')]), '10.96.0.10', 80), []);

  // The terminating fallback is decided among this node's endpoints (as kube-proxy does): a ready one elsewhere does not prevent it.
  const draining = local([ep('10.0.1.1', { ready: false, serving: true, terminating: true }, 'n1'), ep('10.0.2.1', { ready: true }, 'n2')]);
  assert.deepEqual(backendsAt(draining, '10.96.0.10', 80), ['10.0.1.1:8080']);
  assert.deepEqual(backendsAt(draining, '192.0.2.1', 80), ['10.0.2.1:8080']);

  // Without the policy, the cluster IP gets every endpoint.
  const cluster = serviceFrontends([service('web')], [slice('web', httpPort, [ep('10.0.1.1', {}, 'n1'), ep('10.0.2.1', {}, 'n2')])], 'n1').frontends;
  assert.deepEqual(backendsAt(cluster, '10.96.0.10', 80), ['10.0.1.1:8080', '10.0.2.1:8080']);
});

test('Services that kube-proxy does not proxy give no frontend, even with external IPs', () => {
  const rows: Array<[string, V1Service]> = [
    // [what, service]
    ['headless (clusterIP None)', service('h', { clusterIP: 'None', clusterIPs: ['None'], externalIPs: ['192.0.2.1'] })],
    ['no cluster IP at all', service('e', { clusterIP: '', clusterIPs: undefined })],
    ['ExternalName', service('x', { type: 'ExternalName', externalName: 'example.com', clusterIP: '', clusterIPs: undefined, externalIPs: ['192.0.2.1'] })],
    ['ExternalName even with a cluster IP left in its spec', service('x', { type: 'ExternalName', externalName: 'example.com' })],
    ['IPv6 single-stack: the IPv4 datapath does not proxy it, not even its IPv4 external IP', service('v6', { clusterIP: 'fd00::10', clusterIPs: ['fd00::10'], externalIPs: ['192.0.2.1'] })],
  ];
  for (const [what, svc] of rows) {
    const name = svc.metadata!.name!;
    assert.deepEqual(serviceFrontends([svc], [slice(name, httpPort, [ep('10.0.0.1')])], 'n1'), { frontends: [], problems: [] }, what);
  }
});

test('frontend addresses: the IPv4 cluster IPs, external IPs and VIP-mode load-balancer IPs; IPv6 is skipped silently', () => {
  const svc = service(
    'web',
    { clusterIP: 'fd00::10', clusterIPs: ['fd00::10', '10.96.0.10'], externalIPs: ['192.0.2.1', '2001:db8::1', '10.96.0.10', '9.0.0.1'] },
    {
      loadBalancer: {
        ingress: [
          { ip: '198.51.100.1' }, // no ipMode: VIP
          { ip: '198.51.100.2', ipMode: 'VIP' },
          { ip: '198.51.100.3', ipMode: 'Proxy' }, // kube-proxy leaves it to the load balancer
          { hostname: 'lb.example.com' }, // a name is no address
          { ip: '2001:db8::2' },
          { ip: '192.0.2.1' }, // also an external IP: one frontend
        ],
      },
    },
  );
  const { frontends, problems } = serviceFrontends([svc], [slice('web', httpPort, [ep('10.0.0.1')]), slice('web', httpPort, [ep('fd00::1')], { addressType: 'IPv6' })], 'n1');
  assert.deepEqual(problems, []);
  assert.deepEqual(
    frontends.map((f) => [f.ip, f.backends.map((b) => b.ip)]),
    [
      ['9.0.0.1', ['10.0.0.1']], // addresses sort as numbers
      ['10.96.0.10', ['10.0.0.1']],
      ['192.0.2.1', ['10.0.0.1']],
      ['198.51.100.1', ['10.0.0.1']],
      ['198.51.100.2', ['10.0.0.1']],
    ],
  );

  // Without clusterIPs (an older object), clusterIP is read.
  const legacy = serviceFrontends([service('web', { clusterIP: '10.96.0.11', clusterIPs: undefined })], [], 'n1').frontends;
  assert.deepEqual(legacy.map((f) => f.ip), ['10.96.0.11']);
});

test('a whole frontend: names for messages, the Service port, protocol and ClientIP affinity', () => {
  const svc = service('dns', {
    sessionAffinity: 'ClientIP',
    ports: [
      { name: 'dns-tcp', port: 53, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ],
  });
  const slices = [slice('dns', [{ name: 'dns', port: 1053, protocol: 'UDP' }, { name: 'dns-tcp', port: 1053 }], [ep('10.0.0.1')])];
  const { frontends } = serviceFrontends([svc], slices, 'n1');
  const base = { service: 'ns/dns', ip: '10.96.0.10', port: 53, clientAffinity: true, backends: [{ ip: '10.0.0.1', port: 1053 }] };
  // Sorted by ip, port, then protocol.
  assert.deepEqual(frontends, [
    { ...base, portName: 'dns-tcp', protocol: 'TCP' },
    { ...base, portName: 'dns', protocol: 'UDP' },
  ]);
  assert.equal(serviceFrontends([service('web', { sessionAffinity: 'None' })], [], 'n1').frontends[0]!.clientAffinity, false);
});

test('an SCTP port is not translated and is reported; the Service’s other ports are', () => {
  const svc = service('sig', {
    externalIPs: ['192.0.2.1'],
    ports: [
      { name: 'http', port: 80 },
      { name: 'diameter', port: 3868, protocol: 'SCTP' },
    ],
  });
  const { frontends, problems } = serviceFrontends([svc], [slice('sig', [...httpPort, { name: 'diameter', port: 3868, protocol: 'SCTP' }], [ep('10.0.0.1')])], 'n1');
  assert.deepEqual(frontends.map((f) => `${f.ip}:${f.port}/${f.protocol}`), ['10.96.0.10:80/TCP', '192.0.2.1:80/TCP']);
  assert.equal(problems.length, 1, 'one problem per port, not per address');
  assert.equal(problems[0]!.service, 'ns/sig');
  assert.match(problems[0]!.message, /ns\/sig/);
  assert.match(problems[0]!.message, /diameter/);
  assert.match(problems[0]!.message, /SCTP/);
});

test('two Services on one address, port and protocol: the first by namespace/name keeps it, the other is reported', () => {
  const services = [
    service('web', { clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20'], externalIPs: ['192.0.2.1'] }, {}, 'zeta'),
    service('web', { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], externalIPs: ['192.0.2.1'] }, {}, 'alpha'),
    // Same address and port over UDP: no conflict.
    service('udp', { clusterIP: '10.96.0.30', clusterIPs: ['10.96.0.30'], externalIPs: ['192.0.2.1'], ports: [{ name: 'http', port: 80, protocol: 'UDP' }] }, {}, 'zeta'),
  ];
  const slices = [slice('web', httpPort, [ep('10.0.0.1')], { namespace: 'alpha' }), slice('web', httpPort, [ep('10.0.0.2')], { namespace: 'zeta' })];
  const { frontends, problems } = serviceFrontends(services, slices, 'n1');
  assert.deepEqual(
    frontends.map((f) => `${f.ip}:${f.port}/${f.protocol} ${f.service}`),
    ['10.96.0.10:80/TCP alpha/web', '10.96.0.20:80/TCP zeta/web', '10.96.0.30:80/UDP zeta/udp', '192.0.2.1:80/TCP alpha/web', '192.0.2.1:80/UDP zeta/udp'],
  );
  assert.deepEqual(backendsAt(frontends, '192.0.2.1', 80), ['10.0.0.1:8080']);
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.service, 'zeta/web');
  assert.match(problems[0]!.message, /192\.0\.2\.1:80\/TCP/);
  assert.match(problems[0]!.message, /alpha\/web/);
});

test('a slice port without a number is unusable: its endpoints back nothing', () => {
  const slices = [
    slice('web', [{ name: 'http', protocol: 'TCP' }], [ep('10.0.0.1')]),
    slice('web', [{ name: 'http', port: 0 }], [ep('10.0.0.2')]),
    slice('web', httpPort, [ep('10.0.0.3')]),
  ];
  assert.deepEqual(backendsAt(serviceFrontends([service('web')], slices, 'n1').frontends, '10.96.0.10', 80), ['10.0.0.3:8080']);
});

test('slices of other Services, of other namespaces, of no Service or not IPv4 are ignored', () => {
  const slices = [
    slice('web', httpPort, [ep('10.0.0.1')]),
    slice('web', httpPort, [ep('10.0.0.2')], { namespace: 'other' }), // same name, other namespace
    slice('api', httpPort, [ep('10.0.0.3')]), // same namespace, other Service
    { ...slice('web', httpPort, [ep('10.0.0.4')]), metadata: { namespace: 'ns', name: 'unlabelled' } },
    slice('web', httpPort, [ep('10.0.0.5')], { addressType: 'FQDN' }), // only IPv4 slices count, whatever their addresses look like
  ];
  assert.deepEqual(backendsAt(serviceFrontends([service('web')], slices, 'n1').frontends, '10.96.0.10', 80), ['10.0.0.1:8080']);
});

test('objects missing fields are skipped without throwing', () => {
  const services = [
    { spec: service('x').spec } as V1Service, // no metadata
    { metadata: { name: 'no-namespace' }, spec: service('x').spec } as V1Service,
    { metadata: { namespace: 'ns', name: 'no-spec' } } as V1Service,
    service('no-ports', { ports: undefined }),
    service('web', { clusterIP: '10.96.0.11', clusterIPs: ['10.96.0.11'] }),
  ];
  const slices = [
    { addressType: 'IPv4', endpoints: [ep('10.0.0.9')] } as V1EndpointSlice, // no metadata
    { metadata: { namespace: 'ns', labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv4' } as unknown as V1EndpointSlice, // no ports, no endpoints
    slice('web', httpPort, [{} as V1Endpoint, ep('10.0.0.1')]), // an endpoint without addresses
  ];
  const { frontends, problems } = serviceFrontends(services, slices, 'n1');
  assert.deepEqual(problems, []);
  assert.deepEqual(frontends.map((f) => [f.service, f.ip, f.backends]), [['ns/web', '10.96.0.11', [{ ip: '10.0.0.1', port: 8080 }]]]);
});

test('the API server\'s addresses are those of the default/kubernetes EndpointSlices, IPv4, each once, sorted', () => {
  const slices = [
    slice('kubernetes', [{ name: 'https', port: 6443, protocol: 'TCP' }], [ep('172.30.0.12'), ep('172.30.0.11', { ready: false })], { namespace: 'default' }),
    slice('kubernetes', [{ name: 'https', port: 6443, protocol: 'TCP' }], [ep('172.30.0.12')], { namespace: 'default' }),
    slice('kubernetes', [{ name: 'https', port: 6443, protocol: 'TCP' }], [ep('fd00::11')], { namespace: 'default', addressType: 'IPv6' }),
    slice('kubernetes', httpPort, [ep('10.200.1.9')], { namespace: 'ns' }), // another namespace's Service of that name
    slice('web', httpPort, [ep('10.200.1.10')], { namespace: 'default' }),
  ];
  assert.deepEqual(apiServerAddresses(slices), ['172.30.0.11', '172.30.0.12']);
  assert.deepEqual(apiServerAddresses([]), []);
});
