/**
 * The admin endpoint (15000, localhost): `/config_dump` and `/logging?level=`, as upstream
 * ztunnel's src/admin.rs. It reads the node agent's parts through getters, so a dump always
 * shows the state in force when it is asked for.
 */
import { type CertManager, type HttpHandler, type Problem, sendJson, sendText } from '@ambient/shared';
import type { Logger } from 'pino';
import type { ZtunnelState } from '../state/ztunnel-state.js';
import type { XdsConfigSource } from '../xds/xds-config-source.js';

export interface AdminInputs {
  readonly nodeName: string;
  /** Its level is changed by `/logging?level=`. */
  readonly logger: Logger;
  readonly state: () => ZtunnelState | undefined;
  readonly certs: () => CertManager | undefined;
  /** Uids of the pods served now. */
  readonly enrolled: () => string[];
  readonly configRejections: () => number;
  readonly lastConfigProblems: () => readonly Problem[];
  readonly xds: () => XdsConfigSource | undefined;
}

/** The admin endpoint's request handler. */
export function adminHandler(inputs: AdminInputs): HttpHandler {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (url.pathname === '/config_dump') {
      const c = inputs.state()?.config;
      const xds = inputs.xds();
      sendJson(res, {
        node: inputs.nodeName,
        workloads:
          c?.workloads.map((w) => ({
            ...w,
            services: Object.fromEntries([...w.services].map(([k, v]) => [k, Object.fromEntries(v)])),
          })) ?? [],
        services: c?.services.map((s) => ({ ...s, ports: Object.fromEntries(s.ports) })) ?? [],
        policies: c?.policies ?? [],
        certificates: inputs.certs()?.dump() ?? [],
        enrolled: inputs.enrolled(),
        configRejections: inputs.configRejections(),
        lastConfigProblems: inputs.lastConfigProblems(),
        ...(xds && { xds: xds.dump() }),
      });
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
    sendText(res, 404, 'endpoints: /config_dump /logging?level=\n');
  };
}
