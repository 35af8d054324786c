// Loads every load-balancing policy so each registers itself by Envoy's name; a new policy is one file plus one line here.
import './round-robin.js';
import './least-request.js';
import './random.js';
import './ring-hash.js';
import './maglev.js';

export { loadBalancerPolicy, loadBalancerPolicyNames, registerLoadBalancerPolicy } from './load-balancer-policy.js';
export type { HostPicker, LbEnvironment, LoadBalancerPolicy } from './load-balancer-policy.js';
