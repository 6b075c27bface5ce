export { NetnsSockets, ZTUNNEL_MARK } from './capture/netns-sockets.js';
