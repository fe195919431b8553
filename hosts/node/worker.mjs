// The thread of `stats()`. The low-level `connection` interface has no non-blocking form:
// `stats` blocks until the server answers, so it runs here, in an instance of its own
// with the preview2-shim's WASI (synchronous sockets), never on the application's thread.
// dflockd.mjs sends {seq, args: {server, settings}}; the answer is {seq, value} or
// {seq, error: {kind, detail}}.
import { parentPort } from 'node:worker_threads';
import { instantiate, shimImports } from './component.mjs';
import { answerOf } from './errors.mjs';

const { connection } = await instantiate(await shimImports());

// Counters and connection ids are u64 in WIT but stay far below 2^53: plain numbers here.
function plainStats(s) {
  return {
    connections: Number(s.connections),
    locks: s.locks.map((l) => ({ ...l, ownerConnId: Number(l.ownerConnId) })),
    semaphores: s.semaphores,
    idleLocks: s.idleLocks,
    idleSemaphores: s.idleSemaphores,
    cluster: s.cluster,
  };
}

function stats({ server, settings }) {
  const conn = connection.Connection.create(server, settings);
  try {
    conn.connect();
    return plainStats(conn.stats());
  } finally {
    conn[Symbol.dispose]();
  }
}

// As plain data for postMessage: the component's answer (answerOf), else `internal`.
function errorOf(e) {
  const answer = answerOf(e);
  if (answer) return { kind: answer.kind, detail: answer.detail };
  return { kind: 'internal', detail: String(e?.message ?? e) };
}

parentPort.on('message', ({ seq, args }) => {
  let reply;
  try {
    reply = { seq, value: stats(args) };
  } catch (e) {
    reply = { seq, error: errorOf(e) };
  }
  parentPort.postMessage(reply);
});
