export { runHboneDemo } from './hbone-demo.js';
