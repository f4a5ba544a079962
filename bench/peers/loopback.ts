// Preloaded (`node --import`) into a peer that cannot be told which address to listen on (the
// Portkey gateway binds every interface): a listen() on a port without a host gets 127.0.0.1, so
// the benchmark never opens a port beyond loopback.
import { Server } from 'node:net';

type Listen = (...args: unknown[]) => Server;
const listen = Server.prototype.listen as Listen;
Server.prototype.listen = function (this: Server, ...args: unknown[]): Server {
  const [first, second] = args;
  if (typeof first === 'number' && (second === undefined || typeof second === 'function')) args.splice(1, second === undefined ? 1 : 0, '127.0.0.1');
  else if (typeof first === 'object' && first !== null && 'port' in first && !('host' in first) && !('path' in first)) args[0] = { ...first, host: '127.0.0.1' };
  return listen.apply(this, args);
} as Server['listen'];
