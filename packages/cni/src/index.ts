// The public API of @ambient/cni: what the end-to-end suites use. The agent runs from main.ts.

export type { CapturedPod, CaptureRules, KubeReader, NetnsFinder } from './agent/node-agent.js';
export { NodeAgent } from './agent/node-agent.js';
export type { PluginAddEvent, PluginAddReply } from './agent/plugin-event.js';
export { CMDADD_PATH, decodePluginAddEvent } from './agent/plugin-event.js';
export { MAX_EVENT_BYTES, PluginEventServer } from './agent/plugin-event-server.js';
export type { WorkloadInfo, ZtunnelLink } from './agent/ztunnel-link.js';
export type { CniAddresses, CniAppInputs } from './app/cni-app.js';
export { CniApp, PLUGIN_TIMEOUT_SECONDS } from './app/cni-app.js';
export type { CniConfig } from './config/cni-config.js';
export { parseCniConfig } from './config/cni-config.js';
export type { EnrollDecision, PodView } from './enroll/enrollment.js';
export { decideEnrollment } from './enroll/enrollment.js';
export { CniError } from './errors.js';
export type { PluginEntry } from './install/conflist.js';
export { insertPlugin, PLUGIN_TYPE, removePlugin } from './install/conflist.js';
export { PluginInstaller, primaryConfigFile } from './install/plugin-installer.js';
export { podFromCgroupFile } from './netns/cgroup-pod-uid.js';
export { ProcNetnsFinder } from './netns/proc-netns-finder.js';
