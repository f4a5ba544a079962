// `make run`'s app stand-in: two chat completions a second through Breakwater with the real
// openai SDK, one line each, so the breaker opening and the failover are visible.
import OpenAI from 'openai';

const openai = new OpenAI({ baseURL: 'http://127.0.0.1:7878/openai', apiKey: 'sk-app-key-breakwater-replaces' });
let n = 0;
setInterval(async () => {
  const i = ++n;
  try {
    const { response } = await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    console.log(`[app] request ${i}: 200 via ${response.headers.get('x-breakwater-endpoint')} (attempts ${response.headers.get('x-breakwater-attempts')})`);
  } catch (e) {
    console.log(`[app] request ${i}: error ${(e as Error).message}`);
  }
}, 500);
