import { describe, expect, it } from 'vitest';
import { readinessReply } from './readiness-reply.js';

describe('readinessReply', () => {
  it('200 ready when nothing blocks, 500 naming the blockers sorted otherwise', () => {
    expect(readinessReply('GET', '/healthz/ready', [])).toEqual({ status: 200, body: 'ready\n' });
    expect(readinessReply('GET', '/healthz/ready', ['pod demo/sleep', 'config'])).toEqual({
      status: 500,
      body: 'not ready, pending: config, pod demo/sleep\n',
    });
  });

  it('ignores the query', () => {
    expect(readinessReply('GET', '/healthz/ready?x=1', [])).toEqual({ status: 200, body: 'ready\n' });
  });

  it('another method on /healthz/ready is an empty 405, ready or not', () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']) {
      expect(readinessReply(method, '/healthz/ready', [])).toEqual({ status: 405, body: '' });
      expect(readinessReply(method, '/healthz/ready', ['config'])).toEqual({ status: 405, body: '' });
    }
  });

  it('any other path is an empty 404, whatever the method and readiness', () => {
    for (const url of ['/', '/other', '/healthz/ready/', '/healthz', '/HEALTHZ/READY', '/metrics']) {
      expect(readinessReply('GET', url, [])).toEqual({ status: 404, body: '' });
      expect(readinessReply('POST', url, ['config'])).toEqual({ status: 404, body: '' });
    }
  });

  it('answers the chosen not-ready status, and only when not ready', () => {
    expect(
      readinessReply('GET', '/healthz/ready', ['config', 'certificate'], { notReadyStatus: 503 }),
    ).toEqual({
      status: 503,
      body: 'not ready, pending: certificate, config\n',
    });
    expect(readinessReply('GET', '/healthz/ready', [], { notReadyStatus: 503 })).toEqual({
      status: 200,
      body: 'ready\n',
    });
    expect(readinessReply('POST', '/healthz/ready', ['config'], { notReadyStatus: 503 })).toEqual({
      status: 405,
      body: '',
    });
    expect(readinessReply('GET', '/other', ['config'], { notReadyStatus: 503 })).toEqual({
      status: 404,
      body: '',
    });
  });
});
