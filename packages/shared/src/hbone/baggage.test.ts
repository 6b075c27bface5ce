import { describe, expect, it } from 'vitest';
import { BAGGAGE_MAX_BYTES, BAGGAGE_MAX_MEMBERS, formatBaggage, parseBaggage } from './baggage.js';

describe('formatBaggage', () => {
  it('writes upstream ztunnel keys in its order, with the workload kind in the key', () => {
    expect(
      formatBaggage(
        {
          clusterId: 'K1',
          namespace: 'NS1',
          workloadName: 'N1',
          serviceName: 'N2',
          revision: 'V1',
          region: 'r1',
          zone: 'z1',
        },
        'deployment',
      ),
    ).toBe(
      'k8s.cluster.name=K1,k8s.namespace.name=NS1,k8s.deployment.name=N1,service.name=N2,service.version=V1,cloud.region=r1,cloud.availability_zone=z1',
    );
    expect(formatBaggage({ namespace: 'demo', workloadName: 'batch' }, 'job')).toBe(
      'k8s.namespace.name=demo,k8s.job.name=batch',
    );
  });

  it('leaves out empty and absent fields; nothing known is an empty value', () => {
    expect(formatBaggage({ clusterId: '', namespace: 'demo' }, 'pod')).toBe('k8s.namespace.name=demo');
    expect(formatBaggage({}, 'pod')).toBe('');
  });

  it('percent-encodes what W3C baggage values may not hold, and reads it back', () => {
    const b = { namespace: 'a b,c;d"e\\f%g', serviceName: 'caf\u00e9' };
    const text = formatBaggage(b, 'pod');
    expect(text).toBe('k8s.namespace.name=a%20b%2Cc%3Bd%22e%5Cf%25g,service.name=caf%C3%A9');
    expect(text).toMatch(/^[\x21-\x7e]+$/);
    expect(parseBaggage(text)).toEqual(b);
  });
});

describe('parseBaggage', () => {
  it('reads every key upstream reads, each workload kind as the workload name', () => {
    expect(
      parseBaggage(
        'k8s.cluster.name=K1,k8s.namespace.name=NS1,k8s.deployment.name=N1,service.name=N2,service.version=V1,cloud.region=r,cloud.availability_zone=z',
      ),
    ).toEqual({
      clusterId: 'K1',
      namespace: 'NS1',
      workloadName: 'N1',
      serviceName: 'N2',
      revision: 'V1',
      region: 'r',
      zone: 'z',
    });
    for (const kind of ['deployment', 'cronjob', 'pod', 'job'])
      expect(parseBaggage(`k8s.${kind}.name=w`)).toEqual({ workloadName: 'w' });
    expect(parseBaggage('k8s.statefulset.name=w')).toEqual({});
  });

  it('reads repeated headers (joined by the HTTP/2 layer) and lists with spaces and properties', () => {
    expect(parseBaggage('k8s.cluster.name=K1, k8s.namespace.name=NS1')).toEqual({
      clusterId: 'K1',
      namespace: 'NS1',
    });
    expect(parseBaggage(['service.name=a', 'service.version=v2'])).toEqual({
      serviceName: 'a',
      revision: 'v2',
    });
    expect(parseBaggage(' service.name = a ;prop=1;flag , k8s.pod.name=p')).toEqual({
      serviceName: 'a',
      workloadName: 'p',
    });
  });

  it('treats empty values as unset, as upstream', () => {
    expect(
      parseBaggage(
        'k8s.cluster.name=,k8s.namespace.name=,k8s.deployment.name=,service.name=,service.version=',
      ),
    ).toEqual({});
    expect(parseBaggage('service.name=a,service.name=')).toEqual({});
  });

  it('tolerates garbage: broken members are skipped, the rest is read', () => {
    expect(parseBaggage('garbage,=x,service.name=%zz,bad key=1,k8s.namespace.name=ok,,;;')).toEqual({
      namespace: 'ok',
    });
    expect(parseBaggage('service.name=%E0%A4%A')).toEqual({});
    // Octets W3C does not allow in a value (quotes, spaces inside, backslash, non-ASCII).
    expect(
      parseBaggage('service.name="a b",k8s.pod.name=a\\b,k8s.namespace.name=caf\u00e9,service.version=v1'),
    ).toEqual({
      revision: 'v1',
    });
    for (const v of [undefined, null, 42, {}, '', '\u0000\u0001'])
      expect(parseBaggage(v as unknown)).toEqual({});
  });

  it('ignores a header over the W3C limits whole instead of reading part of it', () => {
    const long = `service.name=a,k8s.namespace.name=${'x'.repeat(BAGGAGE_MAX_BYTES)}`;
    expect(parseBaggage(long)).toEqual({});
    const many = ['service.name=a', ...Array.from({ length: BAGGAGE_MAX_MEMBERS }, (_, i) => `k${i}=v`)];
    expect(parseBaggage(many.join(','))).toEqual({});
    // At the limits it is read.
    const atLimit = [
      'service.name=a',
      ...Array.from({ length: BAGGAGE_MAX_MEMBERS - 1 }, (_, i) => `k${i}=v`),
    ];
    expect(parseBaggage(atLimit.join(','))).toEqual({ serviceName: 'a' });
  });
});
