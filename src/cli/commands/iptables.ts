// `trellis iptables` (istio-iptables' role): writes Istio's capture rules into the current network namespace, prints
// them (--dry-run), or removes them (`trellis iptables clean`).
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigValidationError, describeError, TrellisError } from '../../common/errors.js';
import { CAPTURE_DEFAULTS, parseCaptureFlags } from '../../agent/capture/capture-config.js';
import { buildCaptureRules } from '../../agent/capture/iptables-rules.js';
import { applyCapture, buildCleanupInput, cleanCapture, readCurrentRules, detectVariant, IPTABLES_VARIANTS, type IptablesVariant } from '../../agent/capture/iptables-runner.js';

interface IptablesOptions {
  envoyPort: string;
  inboundCapturePort: string;
  inboundTunnelPort: string;
  proxyUid: string;
  proxyGid?: string;
  istioInboundInterceptionMode: string;
  istioInboundPorts: string;
  istioLocalExcludePorts: string;
  istioServiceCidr: string;
  istioServiceExcludeCidr: string;
  istioOutboundPorts: string;
  istioLocalOutboundPortsExclude: string;
  istioExcludeInterfaces: string;
  redirectDns: boolean;
  captureAllDns: boolean;
  resolvConf: string;
  dryRun: boolean;
  cleanup: boolean;
  iptablesVariant: IptablesVariant | 'auto';
}

function parseVariant(value: string): IptablesVariant | 'auto' {
  if (!(IPTABLES_VARIANTS as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${IPTABLES_VARIANTS.join(', ')}`);
  return value as IptablesVariant | 'auto';
}

function fail(err: unknown): void {
  const code = err instanceof TrellisError ? ` [${err.code}]` : '';
  const message = err instanceof ConfigValidationError ? `invalid flags:\n  ${err.details.join('\n  ')}` : describeError(err);
  process.stderr.write(`trellis iptables: ${message}${code}\n`);
  process.exitCode = 1;
}

function clean(variant: IptablesVariant | 'auto', dryRun: boolean): void {
  const commands = detectVariant(variant);
  if (dryRun) {
    // Reading the current rules changes nothing; the removal is printed instead of restored.
    process.stdout.write(buildCleanupInput(readCurrentRules(commands)));
    return;
  }
  const removed = cleanCapture(commands);
  process.stderr.write(removed === '' ? 'trellis iptables: no Istio chains to remove\n' : `trellis iptables: removed with ${commands.restore} --noflush:\n${removed}`);
}

export function iptablesCommand(): Command {
  const command = new Command('iptables')
    .description(
      "Set up Istio's sidecar traffic capture (istio-iptables) in the current network namespace: outbound TCP to the " +
        "proxy's 15001, inbound TCP to 15006, the proxy's own uid/gid left alone. Applied with iptables-restore (run as root).",
    )
    .option('-p, --envoy-port <port>', 'port outbound TCP is redirected to', CAPTURE_DEFAULTS.proxyPort)
    .option('-z, --inbound-capture-port <port>', 'port inbound TCP is redirected to', CAPTURE_DEFAULTS.inboundCapturePort)
    .option('-e, --inbound-tunnel-port <port>', 'the tunnel (HBONE) port, never captured inbound', CAPTURE_DEFAULTS.inboundTunnelPort)
    .option('-u, --proxy-uid <uids>', "the proxy's user(s), whose outbound traffic is not captured (comma separated)", CAPTURE_DEFAULTS.proxyUid)
    .option('-g, --proxy-gid <gids>', "the proxy's group(s), whose outbound traffic is not captured (default: the -u value)")
    .option('-m, --istio-inbound-interception-mode <mode>', 'REDIRECT (TPROXY is not supported yet)', CAPTURE_DEFAULTS.inboundInterceptionMode)
    .option('-b, --istio-inbound-ports <ports>', 'inbound ports to capture: "*" for all, "" for none', CAPTURE_DEFAULTS.inboundPorts)
    .option('-d, --istio-local-exclude-ports <ports>', 'inbound ports not captured with -b "*" (replaces the default list)', CAPTURE_DEFAULTS.localExcludePorts)
    .option('-i, --istio-service-cidr <cidrs>', 'outbound IPv4 ranges to capture: "*" for all, "" for none', CAPTURE_DEFAULTS.serviceCidr)
    .option('-x, --istio-service-exclude-cidr <cidrs>', 'outbound IPv4 ranges never captured', CAPTURE_DEFAULTS.serviceExcludeCidr)
    .option('-q, --istio-outbound-ports <ports>', 'outbound ports always captured', CAPTURE_DEFAULTS.outboundPorts)
    .option('-o, --istio-local-outbound-ports-exclude <ports>', 'outbound ports never captured (TCP and UDP)', CAPTURE_DEFAULTS.localOutboundPortsExclude)
    .option('-c, --istio-exclude-interfaces <nics>', 'interfaces whose traffic is never captured', CAPTURE_DEFAULTS.excludeInterfaces)
    .option('--redirect-dns', "send DNS (port 53) to the agent's DNS proxy on 15053, except the proxy's own", false)
    .option('--capture-all-dns', 'with --redirect-dns: every port-53 packet, not only those to the resolv.conf name servers', false)
    .option('--resolv-conf <file>', 'where the name servers for --redirect-dns are read', '/etc/resolv.conf')
    .option('-n, --dry-run', 'print the rules (iptables-restore input) and change nothing', false)
    .option('--cleanup', 'remove the Istio chains instead (same as `trellis iptables clean`)', false)
    .option('--iptables-variant <variant>', 'auto (the variant already holding rules, else the system iptables), nft, legacy or default', parseVariant, 'auto')
    .action((opts: IptablesOptions) => {
      try {
        if (opts.cleanup) {
          clean(opts.iptablesVariant, opts.dryRun);
          return;
        }
        let resolvConf: string | undefined;
        if (opts.redirectDns && !opts.captureAllDns) {
          try {
            resolvConf = readFileSync(opts.resolvConf, 'utf8');
          } catch (err) {
            throw new TrellisError('TRELLIS_CONFIG_PARSE', `--redirect-dns: cannot read the name servers from ${opts.resolvConf}: ${describeError(err)}`);
          }
        }
        const config = parseCaptureFlags({
          proxyPort: opts.envoyPort,
          inboundCapturePort: opts.inboundCapturePort,
          inboundTunnelPort: opts.inboundTunnelPort,
          proxyUid: opts.proxyUid,
          ...(opts.proxyGid !== undefined ? { proxyGid: opts.proxyGid } : {}),
          inboundInterceptionMode: opts.istioInboundInterceptionMode,
          inboundPorts: opts.istioInboundPorts,
          localExcludePorts: opts.istioLocalExcludePorts,
          serviceCidr: opts.istioServiceCidr,
          serviceExcludeCidr: opts.istioServiceExcludeCidr,
          outboundPorts: opts.istioOutboundPorts,
          localOutboundPortsExclude: opts.istioLocalOutboundPortsExclude,
          excludeInterfaces: opts.istioExcludeInterfaces,
          redirectDns: opts.redirectDns,
          captureAllDns: opts.captureAllDns,
          ...(resolvConf !== undefined ? { resolvConf } : {}),
        });
        const rules = buildCaptureRules(config);
        if (opts.dryRun) {
          process.stdout.write(rules);
          return;
        }
        const commands = detectVariant(opts.iptablesVariant);
        applyCapture(commands, rules);
        process.stderr.write(`trellis iptables: applied with ${commands.restore} --noflush:\n${rules}`);
      } catch (err) {
        fail(err);
      }
    });
  command
    .command('clean')
    .description("Remove Istio's capture chains (ISTIO_INBOUND, ISTIO_IN_REDIRECT, ISTIO_OUTPUT, ISTIO_REDIRECT, …) and the jumps to them, nothing else")
    .option('-n, --dry-run', 'print what would be removed (iptables-restore input) and change nothing', false)
    .option('--iptables-variant <variant>', 'auto, nft, legacy or default', parseVariant, 'auto')
    .action((opts: { dryRun: boolean; iptablesVariant: IptablesVariant | 'auto' }) => {
      try {
        // Commander gives `-n`/`--iptables-variant` after `clean` to the parent command, which has them too.
        const parent = command.opts<IptablesOptions>();
        clean(parent.iptablesVariant !== 'auto' ? parent.iptablesVariant : opts.iptablesVariant, opts.dryRun || parent.dryRun);
      } catch (err) {
        fail(err);
      }
    });
  return command;
}
