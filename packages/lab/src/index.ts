export * from './address-plan.js';
export * from './lab.js';
export * from './lab-manifests.js';
export * from './lab-mesh.js';
export * from './lab-spec.js';
