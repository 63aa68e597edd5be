import { Counter } from 'prom-client';
import { metricsRegistry } from '../metrics.js';

/** Why a captured or flagged legacy answer went back to the client without capture or flag. */
export type UntouchedReason =
  | 'no_principal'
  | 'session_check_failed'
  | 'not_json'
  | 'answer_too_large'
  | 'buffer_budget'
  | 'unexpected_answer'
  | 'unreadable_request_body'
  | 'request_body_too_large'
  | 'failed';

export const proxyUntouchedAnswers = new Counter({
  name: 'missing_details_proxy_untouched_answers_total',
  help: 'Answers of captured or flagged legacy paths passed through without capture or flag, by path and reason',
  labelNames: ['path', 'reason'] as const,
  registers: [metricsRegistry],
});

export const proxyUpstreamFailures = new Counter({
  name: 'missing_details_proxy_upstream_failures_total',
  help: 'Proxied requests that legacy PY-3 did not answer: bad_gateway (refused, reset) or gateway_timeout',
  labelNames: ['kind'] as const,
  registers: [metricsRegistry],
});
