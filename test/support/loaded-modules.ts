// Preloaded into a child process (`--import`): records every module the main thread loads,
// through Node's synchronous module hooks (require and import alike), and writes the list to
// BW_MODULES_OUT on SIGUSR2. Worker threads run the preload too and record nothing: what a
// worker loads never enters the main heap.
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const seen = new Set<string>();
  registerHooks({
    load(url, context, nextLoad) {
      seen.add(url);
      return nextLoad(url, context);
    },
  });
  const out = process.env.BW_MODULES_OUT;
  if (out) process.on('SIGUSR2', () => writeFileSync(out, [...seen].join('\n')));
}
