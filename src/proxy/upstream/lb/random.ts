// RANDOM: a uniformly random host of the chosen list (Envoy's random balancer ignores weights).
import { registerLoadBalancerPolicy } from './load-balancer-policy.js';

registerLoadBalancerPolicy<null>({
  name: 'RANDOM',
  kind: 'per-source',
  compile: () => null,
  createPicker: (hosts, _weights, _config, env) => ({
    pick: () => (hosts.length === 0 ? undefined : hosts[Math.floor(env.random() * hosts.length)]),
  }),
});
