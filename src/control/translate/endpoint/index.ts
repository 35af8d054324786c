// EDS builders: ClusterLoadAssignments from service instances.
export * from './load-assignment.js';
