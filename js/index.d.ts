// Type declarations of the `memmesh` package (index.js).

/// <reference types="node" />

/** Every error code memmesh raises: the core's ErrorKind names. */
export type ErrorCode =
  | 'NotFound'
  | 'QuotaExceeded'
  | 'Timeout'
  | 'Unauthorized'
  | 'PeerUnavailable'
  | 'Corrupted'
  | 'InvalidInput'
  | 'Closed'
  | 'Io'
  | 'Unsupported'
  | 'HandlerFailed'
  | 'Internal'

/** The codes, in ErrorKind order. */
export declare const ERROR_CODES: readonly ErrorCode[]

/** The error memmesh raises; `code` says what kind of failure it is. */
export declare class MemmeshError extends Error {
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown })
  readonly name: 'MemmeshError'
  readonly code: ErrorCode
}

/** Bytes in: a Buffer, any Uint8Array, an ArrayBuffer, or a string (sent as UTF-8). */
export type BytesLike = Buffer | Uint8Array | ArrayBuffer | string

/** Options of `Node.start`. Every field is optional. */
export interface NodeOptions {
  /** Human-readable name shown to peers (default `node-<short id>`). */
  name?: string
  /** QUIC/UDP listen address, e.g. `'127.0.0.1:0'` (default `'0.0.0.0:0'`). */
  listen?: string
  /** Only nodes holding the same secret can talk to this one. */
  clusterSecret?: string | Uint8Array
  /** Addresses (`'ip:port'`) dialled at start. */
  bootstrap?: string[]
  /** Multicast DNS discovery on the LAN (default true). */
  mdns?: boolean
  /** Network interfaces mDNS may use, by name (default: every interface). */
  mdnsInterfaces?: string[]
  /** Bytes of RAM this node lends to the mesh (default 512 MiB). */
  memoryQuota?: number
  /** Directory for the persisted identity (default: a new identity in memory). */
  dataDir?: string
  /** Worker threads of the node's own runtime (default 2). */
  threads?: number
  /** Maximum size of one message, request or response in bytes (default 8 MiB). */
  maxMessageSize?: number
  /** Default request deadline in milliseconds (default 30000). */
  requestTimeoutMs?: number
  /** Deadline for a message to be accepted by a peer, in milliseconds (default 30000). */
  sendTimeoutMs?: number
  /** Deadline for dialling and authenticating a peer, in milliseconds (default 5000). */
  connectTimeoutMs?: number
  /** Capacity of each channel's incoming queue (default 1024). */
  channelQueue?: number
}

/** A peer known to this node. */
export interface PeerInfo {
  /** The peer's node id (52-character base32 text). */
  id: string
  /** Its human-readable name. */
  name: string
  /** Addresses it can be reached at (`'ip:port'`). */
  addrs: string[]
  /** Membership state. */
  state: 'alive' | 'suspect' | 'down'
  /** Whether an authenticated connection to it is open right now. */
  connected: boolean
  /** Smoothed round-trip time in milliseconds, when connected. */
  rttMs?: number
}

/** A message (or request) as `recv`, iteration and handlers see it. */
export interface IncomingMessage {
  /** The sender's node id. */
  from: string
  /** The payload. */
  data: Buffer
}

/** A membership event. */
export type MembershipEvent =
  | { type: 'PeerUp', id: string, name: string, addrs: string[] }
  | { type: 'PeerSuspect', id: string }
  | { type: 'PeerDown', id: string }
  | { type: 'LeaderChanged', leader: string }
  | { type: 'Lagged', missed: number }

/** Membership events from the moment `node.events()` was called; iteration ends at shutdown. */
export declare class Events implements AsyncIterable<MembershipEvent> {
  private constructor ()
  /** The next event; rejects with code Closed at shutdown. */
  next (): Promise<MembershipEvent>
  [Symbol.asyncIterator] (): AsyncIterator<MembershipEvent>
}

/** Where `send` delivers: every connected peer (undefined), one node id, or several. */
export type Target = string | string[] | undefined

/** A named channel: messages with backpressure, and request/response. */
export declare class Channel implements AsyncIterable<IncomingMessage> {
  private constructor ()
  /** The channel name. */
  readonly name: string
  /** Sends `data` to `to`; resolves with how many peers queued it. */
  send (data: BytesLike, to?: Target): Promise<number>
  /** Sends `data` to every connected peer; resolves with how many queued it. */
  broadcast (data: BytesLike): Promise<number>
  /** Sends a request to `peerId` and resolves with its response. */
  request (peerId: string, data: BytesLike, options?: { timeoutMs?: number }): Promise<Buffer>
  /** The next message; rejects with code Closed at shutdown. */
  recv (): Promise<IncomingMessage>
  /**
   * Calls `fn` for every message, in order (a returned promise is awaited before the
   * next call); `null` removes it. A throw becomes an uncaught exception.
   */
  onMessage (fn: ((msg: IncomingMessage) => void | Promise<void>) | null): void
  /**
   * Answers requests with what `fn` returns or resolves with; a throw or rejection
   * reaches the requester as code HandlerFailed. `null` removes it.
   */
  onRequest (fn: ((req: IncomingMessage) => BytesLike | Promise<BytesLike>) | null): void
  /** Yields messages until the node shuts down. */
  [Symbol.asyncIterator] (): AsyncIterator<IncomingMessage>
}

/** A memmesh node running in this process. */
export declare class Node {
  private constructor ()
  /** Starts a node; resolves once it listens. */
  static start (options?: NodeOptions): Promise<Node>
  /** This node's id (52-character base32 text). */
  readonly id: string
  /** This node's name. */
  readonly name: string
  /** The address the node is bound to, `'ip:port'`. */
  readonly addr: string
  /** A public tag naming this node's cluster (does not reveal the secret). */
  readonly clusterTag: string
  /** The leader of the current membership view (the lowest live id, this node included). */
  readonly leader: string
  /** Whether `shutdown()` has been called. */
  readonly closed: boolean
  /** Connects to the node at `addr` (`'ip:port'`) and resolves with its id. */
  connect (addr: string): Promise<string>
  /** Every peer this node knows. */
  peers (): PeerInfo[]
  /** Membership events from now on. */
  events (): Events
  /** The channel called `name` (created on first use). */
  channel (name: string): Channel
  /** Closes connections, drops handlers, joins the node's threads. Idempotent. */
  shutdown (): Promise<void>
}
