// Types of dflockd.mjs, written by hand: the wrapper's API is its own, not jco's bindings
// (gen/), which stay an implementation detail. Names follow the WIT (wit/*.wit) in camelCase.

// `await using` needs Symbol.asyncDispose in the consumer's lib too (Node has it since 20).
/// <reference lib="esnext.disposable" />

/** The WIT `error` cases, plus `internal` when the component instance broke. */
export type ErrorKind =
  | 'timeout'
  | 'auth'
  | 'max-locks'
  | 'max-waiters'
  | 'limit-mismatch'
  | 'not-enqueued'
  | 'already-enqueued'
  | 'lease-expired'
  | 'draining'
  | 'not-leader'
  | 'lock-lost'
  | 'server'
  | 'protocol'
  | 'connection'
  | 'tls'
  | 'invalid-argument'
  | 'internal';

/** Why a held lease was lost (WIT `loss-cause`). */
export type LossCause = 'renewal-refused' | 'release-refused' | 'connection-lost' | 'no-reply' | 'not-renewed' | 'expired';

/** The payload of a `lock-lost` error (WIT `loss`). */
export interface LossReason {
  cause: LossCause;
  /** What was seen, redacted; may be empty. */
  detail: string;
}

/**
 * Every failure of a call that reached the component. A wrong option name or type is a
 * `TypeError` instead, thrown at once.
 */
export class DflockdError extends Error {
  constructor(kind: ErrorKind, detail?: string | LossReason);
  readonly name: 'DflockdError';
  /** The WIT `error` case. */
  readonly kind: ErrorKind;
  /**
   * The case's payload: the loss for `lock-lost`, the leader's `host:port` for
   * `not-leader`, a message for the others that carry one. Secrets are redacted.
   */
  readonly detail: string | LossReason | undefined;
}

/** A grant from the server. */
export interface Grant {
  /** 32 lowercase hex characters. A secret: whoever has it can release the lock. */
  token: string;
  /** The token's first 16 hex characters as a big-endian u64 (see `fenceFromToken`). */
  fence: bigint;
  /** The lease the server granted, in seconds. */
  leaseS: number;
}

/** A lease an object lost, as given to `onLost`. */
export interface Loss extends LossReason {
  key: string;
  /** The fence of the lost grant. */
  fence: bigint;
}

/** A client certificate, for servers behind a mutual-TLS proxy. */
export interface ClientCert {
  /** The certificate chain, leaf first, PEM. */
  certChainPem: string;
  /** Its private key, PEM (PKCS#8, PKCS#1 or SEC1). Never appears in an error. */
  privateKeyPem: string;
}

/** TLS settings (WIT `tls-setting`); verification is always on. */
export interface TlsOptions {
  /** CA certificates that verify the server, PEM. Default: the bundled Mozilla roots. */
  caPem?: string;
  /** The name the certificate must carry. Default: the host (an IP is checked against IP SANs). */
  serverName?: string;
  /** Default: none. */
  clientCert?: ClientCert;
}

/** How to reach a server: what both a `Lock` and `stats` take. */
export interface ConnectOptions {
  /** Name resolution, TCP connect, TLS and auth together, in ms. Default 10000. */
  connectTimeoutMs?: number | bigint;
  /** For servers started with `--auth-token`. Default: none. */
  authToken?: string;
  /** `true`: TLS with the bundled roots; an object: TLS with these settings. Default: plain TCP. */
  tls?: boolean | TlsOptions;
}

/** The options of a `Lock` or `Semaphore`; any other name is a `TypeError`. */
export interface Options extends ConnectOptions {
  /** `[host, port]` pairs; a key routes to one by CRC-32 (`shardIndex`). Default `[['127.0.0.1', 6388]]`. */
  servers?: Array<[host: string, port: number]>;
  /** Use `servers[serverIndex]` instead of the CRC-32 routing. */
  serverIndex?: number;
  /** How long `acquire` may wait, in seconds. Default 10; 0 is a try-lock. */
  acquireTimeoutS?: number | bigint;
  /** Lease per grant, in seconds. Default: the server's. */
  leaseTtlS?: number | bigint;
  /** Renew when this fraction of the lease has passed, in (0, 1). Default 0.5. */
  renewRatio?: number;
  /** Called once for each lease this object loses. */
  onLost?: (loss: Loss) => void;
}

declare class Primitive implements AsyncDisposable {
  /** The key (a lock set's: its keys, separated by spaces). */
  readonly key: string;
  /** How many leases this object has lost (each also went to `onLost`). */
  readonly losses: number;
  /** Resolves once the component accepted the key and settings; rejects otherwise. */
  ready(): Promise<this>;
  /**
   * Releases the grant (or gives up the queue place): `true` when the server confirmed,
   * `false` when nothing was held. Rejects with `lock-lost` (once) if the lease was lost.
   */
  release(): Promise<boolean>;
  /** Whether a grant is held and not known lost. */
  isHeld(): Promise<boolean>;
  /** Releases what is held (best effort) and closes the connection; idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A lock or a semaphore: one key, two-phase acquisition. */
declare class OneKey extends Primitive {
  /** Waits for the grant, up to the acquire timeout; `null` when it passed. Renewal starts on grant. */
  acquire(): Promise<Grant | null>;
  /** Joins the queue without waiting: `acquired` (held now) or `queued` (call `wait`). */
  enqueue(): Promise<'acquired' | 'queued'>;
  /** After `enqueue`: waits for the grant, up to `timeoutS` (default: the acquire timeout); `null` on timeout. */
  wait(timeoutS?: number | bigint): Promise<Grant | null>;
}

/** An exclusive FIFO lock on one key. Connects at the first `acquire` or `enqueue`. */
export class Lock extends OneKey {
  constructor(key: string, options?: Options);
  /** A `new Lock` whose key and settings the component accepted. */
  static open(key: string, options?: Options): Promise<Lock>;
}

/** A counting semaphore: up to `limit` holders of one key at a time, FIFO. */
export class Semaphore extends OneKey {
  /** `limit` > 0; the first holder of a key fixes it. */
  constructor(key: string, limit: number, options?: Options);
  readonly limit: number;
  /** A `new Semaphore` whose key, limit and settings the component accepted. */
  static open(key: string, limit: number, options?: Options): Promise<Semaphore>;
}

/**
 * Several locks taken as one: every key, or none, in one order (by server, then key) under one
 * deadline (`acquireTimeoutS` for the whole set); what was taken is released when it passes or
 * a member fails. The loss of any member is the loss of the set (`onLost` once).
 */
export class LockSet extends Primitive {
  /** At least one key, none twice. */
  constructor(keys: string[], options?: Options);
  /** A `new LockSet` whose keys and settings the component accepted. */
  static open(keys: string[], options?: Options): Promise<LockSet>;
  /** Waits until every member is held: their grants in `keys()` order; `null` when the timeout passed. */
  acquire(): Promise<Grant[] | null>;
  /** The keys, in the order they are taken. */
  keys(): Promise<string[]>;
  /** Every member's grant while the whole set is held; else `[]`. */
  grants(): Promise<Grant[]>;
}

/**
 * Acquires `key`, runs `fn(grant)`, then releases and closes, whatever happens. Rejects with
 * `timeout` when not granted in time, `lock-lost` when the lease was lost while `fn` ran.
 */
export function withLock<T>(key: string, options: Options, fn: (grant: Grant) => T | Promise<T>): Promise<T>;

/** The fence of a 32-hex token: its first 16 hex characters as a big-endian u64. */
export function fenceFromToken(token: string): Promise<bigint>;

/** The index among `n` servers that `key` routes to: `crc32(utf8(key)) % n`. */
export function shardIndex(key: string, n: number): Promise<number>;

export interface StatsOptions extends ConnectOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 6388. */
  port?: number;
}

export interface LockInfo {
  key: string;
  ownerConnId: number;
  leaseExpiresInS: number;
  waiters: number;
}

export interface SemaphoreInfo {
  key: string;
  limit: number;
  holders: number;
  waiters: number;
}

/** A key nobody holds that the server still remembers. */
export interface IdleInfo {
  key: string;
  idleS: number;
}

export interface Stats {
  connections: number;
  locks: LockInfo[];
  semaphores: SemaphoreInfo[];
  idleLocks: IdleInfo[];
  idleSemaphores: IdleInfo[];
  /** A clustered server's `cluster` object, as JSON text. */
  cluster?: string;
}

/** The server's tables, through one short-lived connection. */
export function stats(options?: StatsOptions): Promise<Stats>;
