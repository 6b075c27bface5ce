import { ADDRESS_TYPE_URL, CLUSTER_LOAD_ASSIGNMENT_TYPE_URL, LISTENER_TYPE_URL } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import { decideSotw, nextWatch, type SotwRequestView, type SotwWatch, watches } from './sotw-watch.js';

const req = (
  typeUrl: string,
  resourceNames: string[] = [],
  responseNonce = '',
  hasError = false,
): SotwRequestView => ({
  typeUrl,
  resourceNames,
  responseNonce,
  hasError,
});
const named = (...names: string[]): SotwWatch => ({
  wildcard: false,
  legacyWildcard: false,
  names: new Set(names),
});
const legacy: SotwWatch = { wildcard: true, legacyWildcard: true, names: new Set() };

describe('nextWatch: what a request subscribes to', () => {
  it('makes an empty first request a wildcard for listeners, clusters and the workload types only', () => {
    expect(nextWatch(undefined, req(LISTENER_TYPE_URL))).toEqual(legacy);
    expect(nextWatch(undefined, req(ADDRESS_TYPE_URL))).toEqual(legacy);
    expect(nextWatch(undefined, req(CLUSTER_LOAD_ASSIGNMENT_TYPE_URL))).toEqual(named());
  });

  it('keeps an empty-first-request wildcard on later empty requests, and leaves it for names', () => {
    expect(nextWatch(legacy, req(LISTENER_TYPE_URL))).toBe(legacy);
    expect(nextWatch(legacy, req(LISTENER_TYPE_URL, ['a']))).toEqual(named('a'));
  });

  it('takes * as an explicit wildcard beside names, and an empty list after names as nothing', () => {
    expect(nextWatch(undefined, req(ADDRESS_TYPE_URL, ['*', 'a']))).toEqual({
      wildcard: true,
      legacyWildcard: false,
      names: new Set(['a']),
    });
    expect(nextWatch(named('a'), req(ADDRESS_TYPE_URL))).toEqual(named());
    // * means nothing special for a type that has no wildcard.
    expect(nextWatch(undefined, req(CLUSTER_LOAD_ASSIGNMENT_TYPE_URL, ['*', 'c']))).toEqual(named('c'));
  });

  it('matches names under a named watch and everything under a wildcard', () => {
    expect(watches(named('a'), 'a')).toBe(true);
    expect(watches(named('a'), 'b')).toBe(false);
    expect(watches(legacy, 'b')).toBe(true);
  });
});

describe('decideSotw: whether to answer', () => {
  it('answers a first request, and a request without a nonce on a known type', () => {
    expect(decideSotw(undefined, undefined, req(ADDRESS_TYPE_URL))).toEqual({
      kind: 'respond',
      watch: legacy,
    });
    expect(decideSotw(named('a'), 'n1', req(ADDRESS_TYPE_URL, ['a']))).toMatchObject({ kind: 'respond' });
  });

  it('records an ACK or a NACK of the latest response without answering it', () => {
    expect(decideSotw(named('a'), 'n1', req(ADDRESS_TYPE_URL, ['a'], 'n1'))).toEqual({
      kind: 'ack',
      watch: named('a'),
    });
    expect(decideSotw(named('a'), 'n1', req(ADDRESS_TYPE_URL, ['a'], 'n1', true))).toEqual({
      kind: 'nack',
      watch: named('a'),
    });
  });

  it('answers an ACK or NACK that changes the names, recording which it was', () => {
    expect(decideSotw(named('a'), 'n1', req(ADDRESS_TYPE_URL, ['a', 'b'], 'n1'))).toEqual({
      kind: 'respond',
      watch: named('a', 'b'),
      ack: 'ack',
    });
    expect(decideSotw(named('a'), 'n1', req(ADDRESS_TYPE_URL, [], 'n1', true))).toEqual({
      kind: 'respond',
      watch: named(),
      ack: 'nack',
    });
  });

  it('ignores a request naming an older nonce, or a nonce for a type never requested', () => {
    expect(decideSotw(named('a'), 'n2', req(ADDRESS_TYPE_URL, [], 'n1'))).toEqual({ kind: 'stale' });
    expect(decideSotw(undefined, undefined, req(ADDRESS_TYPE_URL, [], 'n1'))).toEqual({ kind: 'stale' });
  });
});
