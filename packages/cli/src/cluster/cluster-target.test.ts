import { describe, expect, it } from 'vitest';
import { CliError } from '../cli-error.js';
import { selectTarget } from './cluster-target.js';

const IN_POD = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

describe('which cluster a command talks to', () => {
  it('an explicit --lab is the lab, whatever else is set', () => {
    expect(
      selectTarget({ lab: 'x1', kubeconfig: '/k', labForm: true }, { KUBECONFIG: '/e', ...IN_POD }),
    ).toEqual({ kind: 'lab', name: 'x1' });
    // Even for a command without a lab form: the command then says it has none.
    expect(selectTarget({ lab: 'x1', labForm: false }, {})).toEqual({ kind: 'lab', name: 'x1' });
  });

  it('--kubeconfig before KUBECONFIG before in-cluster', () => {
    expect(selectTarget({ kubeconfig: '/k', labForm: true }, { KUBECONFIG: '/e', ...IN_POD })).toMatchObject({
      kind: 'kube',
      kubeconfig: '/k',
      from: '--kubeconfig',
    });
    expect(selectTarget({ labForm: true }, { KUBECONFIG: '/e', ...IN_POD })).toMatchObject({
      kind: 'kube',
      kubeconfig: '/e',
      from: 'KUBECONFIG',
    });
    expect(selectTarget({ labForm: true }, IN_POD)).toEqual({
      kind: 'kube',
      kubeconfig: '',
      from: 'in-cluster',
      serviceHost: '10.96.0.1',
      servicePort: '443',
    });
  });

  it('a KUBECONFIG list takes its first file; an empty KUBECONFIG counts as unset', () => {
    expect(selectTarget({ labForm: false }, { KUBECONFIG: '::/a:/b' })).toMatchObject({ kubeconfig: '/a' });
    expect(selectTarget({ labForm: true }, { KUBECONFIG: '' })).toEqual({ kind: 'lab', name: 'demo' });
  });

  it('nothing set: the lab demo where there is a lab form, else CLI_ERR_NO_CLUSTER', () => {
    expect(selectTarget({ labForm: true }, {})).toEqual({ kind: 'lab', name: 'demo' });
    expect(() => selectTarget({ labForm: false }, {})).toThrow(CliError);
    try {
      selectTarget({ labForm: false }, { KUBERNETES_SERVICE_PORT: '443' });
    } catch (err) {
      expect((err as CliError).code).toBe('CLI_ERR_NO_CLUSTER');
    }
  });

  it('refuses an empty --kubeconfig rather than guessing', () => {
    expect(() => selectTarget({ kubeconfig: '', labForm: true }, IN_POD)).toThrow(
      '--kubeconfig needs a file name',
    );
  });
});
