export * from './authz/authorization.js';
export * from './capture/inpod-capture.js';
export * from './capture/inpod-rules.js';
export * from './capture/netns-sockets.js';
export * from './config/local-config.js';
export * from './config/local-config-file.js';
export * from './proxy/inpod-proxy.js';
export * from './state/ztunnel-state.js';
