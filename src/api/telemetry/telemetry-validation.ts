// Telemetry validation: structure, provider names, sampling percentage, modes and durations (Istio checks little more).
import { fieldPath, keyPath } from '../problem.js';
import { asBoolean, asDuration, asEnum, asNumber, asObject, asString, eachObject, type Checker } from '../validation/checker.js';
import { checkSecuritySelector } from '../security/security-validation.js';
import { WORKLOAD_MODES } from './telemetry.js';

export function validateTelemetry(c: Checker, spec: unknown): void {
  const t = asObject(c, 'spec', spec, ['selector', 'targetRef', 'targetRefs', 'tracing', 'metrics', 'accessLogging']);
  if (!t) return;
  checkSecuritySelector(c, 'spec.selector', t.selector);
  asObject(c, 'spec.targetRef', t.targetRef, ['group', 'kind', 'name', 'namespace']);
  eachObject(c, 'spec.targetRefs', t.targetRefs, ['group', 'kind', 'name', 'namespace'], () => undefined);

  eachObject(c, 'spec.tracing', t.tracing, ['match', 'providers', 'randomSamplingPercentage', 'disableSpanReporting', 'customTags', 'useRequestIdForTraceSampling'], (tr, p) => {
    checkMatch(c, fieldPath(p, 'match'), tr.match);
    checkProviders(c, fieldPath(p, 'providers'), tr.providers);
    const pct = asNumber(c, fieldPath(p, 'randomSamplingPercentage'), tr.randomSamplingPercentage);
    if (pct !== undefined && (pct < 0 || pct > 100)) c.report(fieldPath(p, 'randomSamplingPercentage'), `randomSamplingPercentage must be in the range 0..100 (got ${pct})`);
    asBoolean(c, fieldPath(p, 'disableSpanReporting'), tr.disableSpanReporting);
    asBoolean(c, fieldPath(p, 'useRequestIdForTraceSampling'), tr.useRequestIdForTraceSampling);
    const tags = asObject(c, fieldPath(p, 'customTags'), tr.customTags);
    for (const [name, tag] of Object.entries(tags ?? {})) {
      const tp = keyPath(fieldPath(p, 'customTags'), name);
      const o = asObject(c, tp, tag, ['literal', 'environment', 'header']);
      if (o && Object.keys(o).length !== 1) c.report(tp, 'custom tag needs exactly one of literal, environment, header');
    }
  });

  eachObject(c, 'spec.metrics', t.metrics, ['providers', 'overrides', 'reportingInterval'], (m, p) => {
    checkProviders(c, fieldPath(p, 'providers'), m.providers);
    asDuration(c, fieldPath(p, 'reportingInterval'), m.reportingInterval);
    eachObject(c, fieldPath(p, 'overrides'), m.overrides, ['match', 'disabled', 'tagOverrides'], (o, op) => {
      const match = asObject(c, fieldPath(op, 'match'), o.match, ['metric', 'customMetric', 'mode']);
      if (match) {
        if (match.metric !== undefined && match.customMetric !== undefined) c.report(fieldPath(op, 'match'), 'only one of metric or customMetric may be set');
        asEnum(c, fieldPath(op, 'match.metric'), match.metric, [
          'ALL_METRICS', 'REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE', 'TCP_OPENED_CONNECTIONS',
          'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES', 'GRPC_REQUEST_MESSAGES', 'GRPC_RESPONSE_MESSAGES',
        ]);
        asString(c, fieldPath(op, 'match.customMetric'), match.customMetric);
        asEnum(c, fieldPath(op, 'match.mode'), match.mode, WORKLOAD_MODES);
      }
      asBoolean(c, fieldPath(op, 'disabled'), o.disabled);
      const tags = asObject(c, fieldPath(op, 'tagOverrides'), o.tagOverrides);
      for (const [name, tag] of Object.entries(tags ?? {})) {
        const tp = keyPath(fieldPath(op, 'tagOverrides'), name);
        const to = asObject(c, tp, tag, ['operation', 'value']);
        if (!to) continue;
        const operation = asEnum(c, fieldPath(tp, 'operation'), to.operation, ['UPSERT', 'REMOVE']);
        const value = asString(c, fieldPath(tp, 'value'), to.value);
        if ((operation ?? 'UPSERT') === 'UPSERT' && !value) c.report(fieldPath(tp, 'value'), 'value is required for UPSERT');
      }
    });
  });

  eachObject(c, 'spec.accessLogging', t.accessLogging, ['match', 'providers', 'disabled', 'filter'], (a, p) => {
    checkMatch(c, fieldPath(p, 'match'), a.match);
    checkProviders(c, fieldPath(p, 'providers'), a.providers);
    asBoolean(c, fieldPath(p, 'disabled'), a.disabled);
    const filter = asObject(c, fieldPath(p, 'filter'), a.filter, ['expression']);
    if (filter) asString(c, fieldPath(p, 'filter.expression'), filter.expression);
  });
}

function checkMatch(c: Checker, path: string, value: unknown): void {
  const m = asObject(c, path, value, ['mode']);
  if (m) asEnum(c, fieldPath(path, 'mode'), m.mode, WORKLOAD_MODES);
}

function checkProviders(c: Checker, path: string, value: unknown): void {
  eachObject(c, path, value, ['name'], (p, pp) => {
    if (!asString(c, fieldPath(pp, 'name'), p.name)) c.report(fieldPath(pp, 'name'), 'provider name is required');
  });
}
