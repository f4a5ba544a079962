// pino JSON logs. Keys never reach a log line: Secret values print as [redacted], and any
// header bag that slips into a line has its credential headers censored by path (the same list
// the proxy strips from requests and responses, src/proxy/headers.ts).
import pino, { type Logger, type DestinationStream } from 'pino';
import { CREDENTIAL_HEADERS } from '../proxy/headers.ts';

export type { Logger };

export const REDACT_PATHS = [
  ...CREDENTIAL_HEADERS.flatMap((h) => [`headers["${h}"]`, `req.headers["${h}"]`, `*.headers["${h}"]`]),
  'auth.value',
  '*.auth.value',
];

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const level = options.level ?? process.env.BREAKWATER_LOG_LEVEL ?? 'info';
  return pino(
    {
      level,
      base: { service: 'breakwater' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that writes nothing (library use and benchmarks with logging off). */
export const silentLogger: Logger = pino({ level: 'silent' });
