// Every default of the LLMUpstream spec, in one block. compile.ts fills them into a new
// object (the caller's spec is never mutated); rules.ts and the CRD's CEL use the same values.
// Where these differ from opossum's own defaults, the README's design notes say why.
export const DEFAULTS = {
  api: 'openai',
  required: false,
  endpoint: { priority: 0, weight: 100 },
  breaker: {
    errorThresholdPercentage: 50,
    volumeThreshold: 10, // opossum's default is 0: one early failure would open it
    // a window full of earlier successes takes seconds to cross the rate; N failures in a row
    // open at once (Envoy's consecutive_5xx, linkerd's consecutive failures)
    consecutiveFailures: 5,
    rollingWindow: '30s', // opossum: 10s
    openDuration: '30s',
    halfOpenRamp: [1, 5, 10], // opossum has no ramp: one trial, any failure reopens
    failOn: ['throttled', 'server_error', 'timeout', 'connect', 'invalid_response'],
  },
  retry: {
    maxAttempts: 3,
    backoff: { initial: '200ms', max: '5s', jitter: 'full' },
    budget: { ratio: 0.2, minPerSecond: 2 },
    respectRetryAfter: true,
    maxRetryAfter: '60s',
    paths: ['chat/completions', 'completions', 'embeddings', 'messages', 'responses', 'moderations'],
  },
  timeouts: { connect: '2s', firstByte: '60s', response: '300s', idle: '30s', total: '600s' },
  validate: { emptyChoices: true, errorInBody: true },
  queue: { maxSize: 256, maxWait: '5s' },
  cache: { enabled: false, ttl: '5m', maxEntries: 1000, maxBytes: 16 * 1024 * 1024 },
  // `models` lists models: it answers without spending a token on every OpenAI-shaped API
  healthCheck: { enabled: false, path: 'models', interval: '15s', timeout: '5s' },
  balance: 'weighted',
  hedge: { maxExtra: 1 },
} as const;
