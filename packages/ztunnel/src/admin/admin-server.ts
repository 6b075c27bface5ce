/**
 * The admin endpoint (15000, localhost): `/config_dump` (upstream's shape, see config-dump.ts)
 * and `/logging?level=`, as upstream ztunnel's src/admin.rs; `/debug/loop_stats` when
 * ZT_LOOP_STATS is on (ours, see loop-stats.ts). It reads the node agent's parts
 * through getters, so a dump always shows the state in force when it is asked for.
 */
import {
  type CertManager,
  type HttpHandler,
  type Problem,
  SpiffeId,
  sendJson,
  sendText,
} from '@ambient/shared';
import type { Logger } from 'pino';
import type { LoopStats } from '../app/loop-stats.js';
import type { LocalConfig } from '../config/local-config.js';
import type { Workload } from '../state/workload.js';
import type { ZtunnelState } from '../state/ztunnel-state.js';
import type { XdsConfigSource } from '../xds/xds-config-source.js';
import { buildConfigDump } from './config-dump.js';

export interface AdminInputs {
  readonly nodeName: string;
  /** The node agent's trust domain, before any config arrives. */
  readonly trustDomain: string;
  /** The node agent's settings, dumped as upstream's `config`. */
  readonly settings: unknown;
  /** Its level is changed by `/logging?level=`. */
  readonly logger: Logger;
  readonly state: () => ZtunnelState | undefined;
  readonly certs: () => CertManager | undefined;
  /** The pods served now. */
  readonly enrolled: () => readonly Workload[];
  /** Pods this node should serve whose proxy is not up yet (starting, or retried after a failure). */
  readonly pending: () => readonly Workload[];
  /** The local config file's content, when that is the config source. */
  readonly staticConfig: () => LocalConfig | undefined;
  readonly configRejections: () => number;
  readonly lastConfigProblems: () => readonly Problem[];
  readonly xds: () => XdsConfigSource | undefined;
  /** Loop diagnostics when enabled (ZT_LOOP_STATS), served at `/debug/loop_stats`. */
  readonly loopStats?: () => LoopStats | undefined;
}

/** The admin endpoint's request handler. */
export function adminHandler(inputs: AdminInputs): HttpHandler {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (url.pathname === '/config_dump') {
      const state = inputs.state();
      const certs = inputs.certs();
      const staticConfig = inputs.staticConfig();
      const xds = inputs.xds()?.dump();
      sendJson(
        res,
        buildConfigDump({
          nodeName: inputs.nodeName,
          ...(state && { config: state.config }),
          trustDomain: state?.trustDomain ?? inputs.trustDomain,
          ...(staticConfig && { staticConfig }),
          settings: inputs.settings,
          ...(certs && {
            certs: {
              dump: () => certs.dump(),
              current: (id: string) => {
                const parsed = SpiffeId.parse(id);
                return parsed.ok ? certs.current(parsed.value) : undefined;
              },
            },
          }),
          enrolled: inputs.enrolled(),
          pending: inputs.pending(),
          configRejections: inputs.configRejections(),
          lastConfigProblems: inputs.lastConfigProblems(),
          ...(xds && { xds }),
        }),
      );
      return;
    }
    if (url.pathname === '/logging') {
      const level = url.searchParams.get('level');
      if (level) {
        if (!inputs.logger.levels.values[level] && level !== 'silent') {
          sendText(res, 400, `unknown level ${level}\n`);
          return;
        }
        inputs.logger.level = level;
      }
      sendText(res, 200, `current log level is ${inputs.logger.level}\n`);
      return;
    }
    if (url.pathname === '/debug/loop_stats') {
      const stats = inputs.loopStats?.();
      if (!stats) {
        sendText(res, 404, 'loop stats are off (ZT_LOOP_STATS=true turns them on)\n');
        return;
      }
      // `?reset` starts a new window after this answer, so a client can bracket one phase.
      sendJson(res, stats.snapshot());
      if (url.searchParams.has('reset')) stats.reset();
      return;
    }
    sendText(res, 404, 'endpoints: /config_dump /logging?level=\n');
  };
}
