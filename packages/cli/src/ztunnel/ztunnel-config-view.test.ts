import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CliError } from '../cli-error.js';
import {
  certificatesTable,
  dumpSection,
  parseZtunnelDump,
  policiesTable,
  servicesTable,
  workloadsTable,
} from './ztunnel-config-view.js';

// istioctl's own writer test data (istio/istio istioctl/pkg/writer/ztunnel/configdump/testdata):
// an upstream ztunnel's dump and the tables istioctl prints for it, byte for byte.
const upstream = (f: string) => readFileSync(new URL(`./testdata/upstream-${f}`, import.meta.url), 'utf8');
const dump = parseZtunnelDump(upstream('dump.json'), 'testdata');
/** The sections of istioctl's `all` summary: workloads, services, policies, certificates, connections. */
const sections = upstream('allsummary.txt').replace(/^\n/, '').split('\n\n');

describe('ztunnel-config tables: the same bytes istioctl prints for the same dump', () => {
  it('workloads (NAMESPACE, POD NAME, ADDRESS, NODE, WAYPOINT, PROTOCOL; waypoint by service name)', () => {
    expect(workloadsTable(dump)).toBe(upstream('workloadsummary.txt'));
  });

  it('services (VIP without its network, WAYPOINT, healthy/all ENDPOINTS)', () => {
    expect(`${servicesTable(dump)}`).toBe(`${sections[1]}\n`);
  });

  it('policies', () => {
    expect(policiesTable(dump)).toBe(upstream('policies.txt'));
  });

  it('certificates (serial in hex, Unavailable states shortened, NA where there is no chain)', () => {
    // Inside the leaf's validity (2023-03-21 .. 2033-03-22) as istioctl's golden file was made.
    expect(certificatesTable(dump, new Date('2026-01-01T00:00:00Z'))).toBe(upstream('secretsummary.txt'));
    // Past it, the same leaf is not a valid cert.
    expect(certificatesTable(dump, new Date('2034-01-01T00:00:00Z'))).not.toContain(' true ');
  });

  it('-o json: the selected entries with a 4-space indent; -o yaml parses back to the same', async () => {
    const json = JSON.parse(dumpSection(dump, 'policies', 'json'));
    expect(json.map((p: { name: string }) => p.name)).toEqual(['allow-nothing', 'allow-waypoint']);
    expect(dumpSection(dump, 'policies', 'json')).toMatch(/^\[\n {4}\{\n {8}"/);
    const { parse } = await import('yaml');
    expect(parse(dumpSection(dump, 'services', 'yaml'))).toEqual(
      JSON.parse(dumpSection(dump, 'services', 'json')),
    );
  });

  it('reads maps as lists, as istioctl does for older dumps', () => {
    const d = parseZtunnelDump(
      JSON.stringify({ policies: { 'a/x': { name: 'x', namespace: 'a', action: 'Deny', scope: 'Global' } } }),
      'test',
    );
    expect(policiesTable(d)).toBe(
      'NAMESPACE POLICY NAME ACTION SCOPE\na         x           Deny   Global\n',
    );
  });

  it('refuses a body that is not a config dump, naming where it came from', () => {
    for (const body of ['<html>', '[]', 'null']) {
      try {
        parseZtunnelDump(body, 'on node node3');
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(CliError);
        expect((err as CliError).code).toBe('CLI_ERR_ZTUNNEL');
        expect((err as CliError).message).toContain('ztunnel on node node3');
      }
    }
  });
});
