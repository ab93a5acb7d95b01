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
  /**
   * Only nodes holding the same secret can talk to this one (`memmesh secret new` makes
   * a strong one). Without it the node is in protected mode: loopback peers only.
   */
  clusterSecret?: string | Uint8Array
  /**
   * Without a cluster secret, talk to peers beyond loopback anyway, unauthenticated:
   * anyone who can reach the node is a member (default false: protected mode).
   */
  open?: boolean
  /**
   * Peers to join: `'ip:port'`, `'host:port'` (A/AAAA records) or `'srv:NAME'` (SRV
   * records give targets and ports). DNS names are re-resolved while the node runs (a
   * name not published yet is retried, not an error).
   */
  bootstrap?: string[]
  /**
   * Node ids of this node's own devices: members (same secret) that may also receive its
   * `'private'` documents (list each other on both sides).
   */
  devices?: string[]
  /**
   * Node ids of nodes outside the cluster this node trusts: they connect by their pinned
   * key without the cluster secret and sync `'community'` and `'commons'` documents only
   * (no cache, blocks, channels, files; never members). A bad id is `InvalidInput`.
   */
  trustedPeers?: string[]
  /** Admit any authenticated node for `'commons'` documents (default false). */
  serveCommons?: boolean
  /** Multicast DNS discovery on the LAN (default true). */
  mdns?: boolean
  /** Network interfaces mDNS may use, by name (default: every interface). */
  mdnsInterfaces?: string[]
  /** Bytes of RAM this node lends to the mesh (default 512 MiB). */
  memoryQuota?: number
  /** Directory for the persisted identity and the files store (default: a new identity in memory, no files). */
  dataDir?: string
  /** Worker threads of the node's own runtime (default 2). */
  threads?: number
  /** Maximum size of one message, request or response in bytes (default 8 MiB). */
  maxMessageSize?: number
  /**
   * Largest document in bytes, Automerge format (default 4 MiB): an edit, import, merge
   * or peer sync past it rejects with code QuotaExceeded.
   */
  docsMaxBytes?: number
  /** Default request deadline in milliseconds (default 30000). */
  requestTimeoutMs?: number
  /** Deadline for a message to be accepted by a peer, in milliseconds (default 30000). */
  sendTimeoutMs?: number
  /** Deadline for dialling and authenticating a peer, in milliseconds (default 5000). */
  connectTimeoutMs?: number
  /** Capacity of each channel's incoming queue (default 1024). */
  channelQueue?: number
  /**
   * Directory where offered transfers land (under the offered name) when no offer
   * handler is set. Without it and without a handler, offers are refused.
   */
  inboxDir?: string
  /**
   * Most bytes the files store keeps on disk (default: no limit; needs `dataDir`). A put
   * over it rejects with code QuotaExceeded.
   */
  diskQuota?: number
  /**
   * A passphrase protecting the files store's key (needs `dataDir`): a data dir made with
   * one opens only with it (a wrong one rejects `Node.start` with code Unauthorized).
   */
  storagePassphrase?: string
  /**
   * How long a node with a `dataDir` remembers a member it has not seen, in milliseconds
   * (default 7 days, at most 365 days; 0 remembers nothing). Remembered members are
   * redialled at start, so a restarted node rejoins its cluster without `bootstrap`.
   */
  knownPeersTtlMs?: number
  /**
   * Serve the cache to Redis clients (redis-cli, ioredis, ...) on this TCP address, e.g.
   * `'127.0.0.1:6379'` (default: off; Redis database `n` is the bucket `db{n}`). Off
   * loopback it needs `redisPassword`.
   */
  redisListen?: string
  /** The password Redis clients must `AUTH` with. */
  redisPassword?: string
  /**
   * Serve `FLUSHDB`/`FLUSHALL` to Redis clients (default false: refused). A database is
   * a bucket shared by the cluster: a flush clears it on every node.
   */
  redisAllowFlush?: boolean
  /** Bounds of the Redis front (default: the core's). */
  redisLimits?: RedisLimitsOptions
  /**
   * `'member'` (default) or `'client'`: a client uses every capability through the
   * members but owns no cache partitions, holds no file replicas and is never chosen for
   * `'auto'` block placement; its coming and going moves no data (ADR 0024).
   */
  role?: 'member' | 'client'
  /**
   * Serve the HTTP management API, Prometheus `/metrics`, the live feed `/events` and the
   * dashboard `/` on this TCP address, e.g. `'127.0.0.1:7480'` (default: off). Off
   * loopback it needs `httpToken`.
   */
  httpListen?: string
  /** The bearer token HTTP clients must send (16 bytes or more). */
  httpToken?: string
  /** Failure detection and membership timing (default: memmesh's). */
  membership?: MembershipOptions
  /** QUIC transport tuning (default: memmesh's). */
  tuning?: TuningOptions
}

/** Bounds of the Redis front, `NodeOptions.redisLimits`; each is optional. */
export interface RedisLimitsOptions {
  /** Longest bulk string (one argument), in bytes (default 16 MiB). */
  maxBulk?: number
  /** Most arguments of one command (default 1 Mi). */
  maxArray?: number
  /** Longest inline command line, in bytes (default 64 KiB). */
  maxInline?: number
  /** Most bytes of unanswered input per connection (default 64 MiB). */
  maxPending?: number
  /** Most clients connected to this node (default 1024). */
  maxClients?: number
  /** Most clients connected from one address (default 256). */
  maxClientsPerIp?: number
  /** Time to finish a frame once begun, in milliseconds (default 30 s). */
  frameTimeoutMs?: number
  /** Most bytes of published messages waiting for one subscriber (default 32 MiB). */
  maxOutput?: number
}

/** Membership timing of `NodeOptions.membership`, in milliseconds; each is optional. */
export interface MembershipOptions {
  /** How often each node probes a random member (default 500). */
  probePeriodMs?: number
  /** How long to wait for a direct probe reply (default 200; below `probePeriodMs`). */
  probeRttMs?: number
  /** How long a suspect member has to refute before it is declared down (default 1000). */
  suspectTimeoutMs?: number
  /** How long after that verdict `peerDown` is reported (default 500). */
  downGraceMs?: number
  /** How long a down member is remembered (default one hour). */
  forgetAfterMs?: number
  /** How often the full member list is exchanged with a random member (default 5000). */
  fullSyncIntervalMs?: number
  /** How often a node announces itself to members declared down (default 1000). */
  rejoinIntervalMs?: number
}

/** QUIC transport tuning of `NodeOptions.tuning`; each is optional. */
export interface TuningOptions {
  /** Upper bound for path MTU discovery, bytes of UDP payload (default 6500). */
  mtuUpperBound?: number
  /** Keep segmentation offload (GSO) enabled (default true). */
  segmentationOffload?: boolean
  /** Per-stream receive window in bytes (default 8 MiB). */
  streamReceiveWindow?: number
  /** Per-connection receive window in bytes (default 32 MiB). */
  receiveWindow?: number
  /** Per-connection send window in bytes (default 32 MiB). */
  sendWindow?: number
  /** UDP socket send and receive buffer size in bytes (default 4 MiB). */
  socketBuffer?: number
  /** Concurrent bidirectional streams a peer may open (default 256). */
  maxBidiStreams?: number
  /** Concurrent unidirectional streams a peer may open (default 256). */
  maxUniStreams?: number
  /** Keep-alive interval in milliseconds (default 2000). */
  keepAliveMs?: number
  /** Idle time in milliseconds after which a silent peer's connection is lost (default 10000). */
  idleTimeoutMs?: number
  /** Congestion controller (default `'cubic'`). */
  congestion?: 'cubic' | 'newreno' | 'bbr'
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
  /** Free bytes of its memory quota, as last advertised through membership (when known). */
  quotaFree?: number
  /** Its role. */
  role: 'member' | 'client'
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

/**
 * Events from the moment the stream was created; iteration ends at shutdown. The one
 * async iterator behind `Events`, `TransferEvents` and `DocChanges` (not exported itself).
 */
declare class EventStream<T> implements AsyncIterable<T> {
  protected constructor ()
  /** The next event; rejects with code Closed at shutdown. */
  next (): Promise<T>
  [Symbol.asyncIterator] (): AsyncIterator<T>
}

/** Membership events from the moment `node.events()` was called; iteration ends at shutdown. */
export declare class Events extends EventStream<MembershipEvent> {
  private constructor ()
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

/** A block id: the BLAKE3 hash of its content, `'blake3:<64 hex digits>'`. */
export type BlockId = string

/** Where `blocks.put` stores a block: this node, the peer with most free quota, or a peer by id. */
export type Placement = 'local' | 'auto' | (string & {})

/** One node's memory use. */
export interface NodeUsage {
  /** The node's id. */
  id: string
  /** Its name. */
  name: string
  /** Its memory quota in bytes. */
  quota: number
  /** Bytes of the quota in use (blocks and cache entries, overhead included). */
  used: number
  /** Bytes of the quota still free. */
  free: number
  /** Blocks it holds. */
  blocks: number
  /** Content bytes of those blocks (without overhead). */
  blockBytes: number
}

/** Blocks: immutable bytes in this node's or a peer's RAM, named by their content hash. */
export declare class Blocks {
  private constructor ()
  /**
   * Stores `data` as a block and resolves with its id. Rejects with code QuotaExceeded
   * when the target node's memory quota cannot hold it (nothing is evicted).
   */
  put (data: BytesLike, placement?: Placement): Promise<BlockId>
  /**
   * The block `id`, from local RAM or from the peer holding it (verified). Rejects with
   * NotFound if no reachable node holds it, PeerUnavailable if its holder is gone,
   * InvalidInput for a malformed id.
   */
  get (id: BlockId): Promise<Buffer>
  /** Frees the block `id` wherever it lives; rejects with NotFound if no node holds it. */
  free (id: BlockId): Promise<void>
  /** Memory use of this node and of every reachable live peer, this node first. */
  stats (): Promise<NodeUsage[]>
  /** This node's memory use. */
  localStats (): NodeUsage
}

/** Options of `node.cache`. Omitted (or `null`) options keep the bucket's existing ones or the defaults. */
export interface CacheOptions {
  /** Default time to live of an entry, in milliseconds (default: no expiry). */
  ttlMs?: number | null
  /** Most entries each node keeps for the bucket; the least recently used go first. */
  maxEntries?: number | null
  /** Most bytes (keys, values, overhead) each node keeps for the bucket. */
  maxBytes?: number | null
  /** How many nodes hold each entry (1..16, default 2). */
  replicas?: number | null
}

/** A bucket's effective options; `null` means unset (no expiry, no limit). */
export interface BucketOptions {
  ttlMs: number | null
  maxEntries: number | null
  maxBytes: number | null
  replicas: number
}

/** Counters of one bucket on this node. */
export interface CacheStats {
  /** Live entries held here. */
  entries: number
  /** Bytes held here (keys, values and per-entry overhead). */
  bytes: number
  /** Reads answered with a value. */
  hits: number
  /** Reads answered with no value. */
  misses: number
  /** Entries removed because their TTL passed. */
  expired: number
  /** Entries removed by LRU to respect `maxEntries` / `maxBytes`. */
  evicted: number
}

/** `setMany` entries: `[key, value]` pairs (an array or any iterable, e.g. a Map) or a plain object. */
export type CacheEntries = Iterable<readonly [string, BytesLike]> | Record<string, BytesLike>

/**
 * A replicated cache bucket: string keys, byte values, TTL and LRU. Writes resolve once
 * every current owner has them; concurrent writes resolve last-writer-wins.
 */
export declare class Cache {
  private constructor ()
  /** The bucket's name. */
  readonly name: string
  /** The bucket's options. */
  readonly options: BucketOptions
  /** Sets `key` to `value`, expiring after `ttlMs` (default: the bucket's TTL). */
  set (key: string, value: BytesLike, ttlMs?: number): Promise<void>
  /** The value of `key`, or `null` if absent or expired. A local hit resolves at once. */
  get (key: string): Promise<Buffer | null>
  /** Deletes `key`; resolves with whether it existed. */
  delete (key: string): Promise<boolean>
  /** Sets the time to live of an existing `key`; resolves with whether it existed. */
  expire (key: string, ttlMs: number): Promise<boolean>
  /** Milliseconds `key` has left to live, `null` if it never expires; NotFound if absent. */
  ttl (key: string): Promise<number | null>
  /** The number of live entries in the bucket across the cluster. */
  len (): Promise<number>
  /**
   * Adds `by` (an integer, default 1) to the integer at `key` (an absent key counts as 0)
   * and resolves with the new value; InvalidInput if the value is not an integer.
   */
  incr (key: string, by?: number): Promise<number>
  /** The values of `keys`, in order (`null` for absent keys). */
  getMany (keys: string[]): Promise<Array<Buffer | null>>
  /** Sets every entry, expiring after `ttlMs` (default: the bucket's TTL). */
  setMany (entries: CacheEntries, ttlMs?: number): Promise<void>
  /** This node's counters for the bucket. */
  stats (): CacheStats
}

/** What `transfer.send` and `transfer.publish` take: a file path, or bytes sent as they are. */
export type TransferSource = string | Buffer | Uint8Array | ArrayBuffer

/** An incoming offer, as an offer handler sees it. */
export interface TransferOffer {
  /** The sender's node id. */
  from: string
  /** Identifies the content across attempts (64 hex digits); what `cancel` takes. */
  id: string
  /** The file name proposed by the sender (no directory part). */
  name: string
  /** Total bytes. */
  size: number
}

/**
 * Where an offer goes, as an offer handler answers: into a file (written beside it as
 * `<path>.memmesh-partial` until verified), into memory, or refused with a reason.
 */
export type OfferAnswer = { path: string } | { memory: true } | { reject: string }

/** The outcome of sending to one peer. */
export interface TransferResult {
  /** The peer's node id. */
  peer: string
  /** Bytes of the content (0 on failure). */
  bytes: number
  /** `'blake3:<hex>'` of the content, confirmed by the receiver; `null` on failure. */
  hash: string | null
  /** Bytes streamed in the last attempt (less than `bytes` after a resume). */
  sent: number
  /** How many attempts it took (a chunk reported corrupted is sent again). */
  attempts: number
  /** How long it took, in milliseconds. */
  durationMs: number
  /**
   * Why it failed, `null` if it did not: e.g. code Unauthorized when the offer was
   * refused, PeerUnavailable, Io, Closed when the receiver cancelled.
   */
  error: MemmeshError | null
}

/** A transfer received whole and verified (or fetched). */
export interface TransferReceived {
  /** The offer it answered. */
  offer: TransferOffer
  /** `'blake3:<hex>'` of the content. */
  hash: string
  /** Where it was written, for a file destination; `null` in memory. */
  path: string | null
  /** The content, for a memory destination; `null` for a file. */
  data: Buffer | null
}

/** Progress of a transfer this node sends or receives. */
export interface TransferProgress {
  /** The other peer's node id (the receiver when sending, the sender when receiving). */
  peer: string
  /** The name offered. */
  name: string
  /**
   * `'send'` when this node sends it (a send, or a fetch it serves), `'receive'` when it
   * receives it (an accepted offer, or its own fetch).
   */
  direction: 'send' | 'receive'
  /** Bytes done (verified ones skipped on resume count as done). */
  done: number
  /** Total bytes. */
  total: number
  /** Bytes per second that crossed the network in this attempt so far. */
  rate: number
}

/** A subscription to transfer events from the moment it was created; iteration ends at shutdown. */
export declare class TransferEvents<T> extends EventStream<T> {
  private constructor ()
  /**
   * How many events this reader missed by falling behind (more than 256 deliveries or
   * 1024 progress events); it then continues with the oldest one still kept.
   */
  readonly missed: number
}

/** Options of `transfer.send`. */
export interface SendOptions {
  /** Cancels every send of this call; the promise then rejects with code Closed. */
  signal?: AbortSignal
}

/** Options of `transfer.fetch`. */
export interface FetchOptions {
  /** Write into this file (resumable); default: into memory (`data`). */
  into?: string
  /** Cancels the fetch; the promise then rejects with code Closed. */
  signal?: AbortSignal
}

/** Verified transfer of files and bytes between nodes. */
export declare class Transfer {
  private constructor ()
  /**
   * Sends `source` to every peer of `to` in parallel, in verified chunks. Resolves with
   * one result per peer, in order; a peer that failed has `error` set (the promise
   * itself rejects only for bad arguments, a closed node or a cancelled signal).
   */
  send (source: TransferSource, to: string | string[], options?: SendOptions): Promise<TransferResult[]>
  /** Offers `source` to peers; resolves with the id they fetch it by (`'blake3:<hex>'`). */
  publish (source: TransferSource): Promise<string>
  /** Stops offering `id`; returns whether it was published. */
  unpublish (id: string): boolean
  /**
   * Fetches content `id` (published by `peer`, or a block it holds) into a file or into
   * memory. Rejects with NotFound if `peer` offers no such content.
   */
  fetch (id: string, peer: string, options?: FetchOptions): Promise<TransferReceived>
  /**
   * Decides where offers go; a throw, a rejection or any other answer refuses the offer.
   * `null` removes it (offers then go to the inbox directory, or are refused).
   */
  onOffer (fn: ((offer: TransferOffer) => OfferAnswer | Promise<OfferAnswer>) | null): void
  /** Cancels the incoming transfer with this offer id; returns whether one was running. */
  cancel (offerId: string): boolean
  /** Transfers this node receives from now on (fetches are returned by `fetch` instead). */
  received (): TransferEvents<TransferReceived>
  /**
   * Progress of the transfers this node sends and receives (including fetches and the
   * fetches it serves) from now on.
   */
  progress (): TransferEvents<TransferProgress>
}

/** What is known of a stored file. */
export interface FileInfo {
  /** Its id, `'blake3:<64 hex digits>'`. */
  id: string
  /** Its size in bytes. */
  size: number
  /** The name given at put (absent if none). */
  name?: string
  /** The content type given at put (absent if none). */
  contentType?: string
  /** When it was first stored on this node, in unix milliseconds. */
  createdMs: number
  /** The ids of the nodes holding it. */
  holders: string[]
}

/** One page of `files.list()`. */
export interface FilesPage {
  /** The files of this page, in id order. */
  files: FileInfo[]
  /** The cursor of the next page (absent after the last). */
  next?: string
}

/** Usage of the files store. */
export interface FilesStats {
  /** Bytes of stored content on disk (encrypted: a little more than the files). */
  diskUsed: number
  /** The disk quota in bytes (absent: no limit). */
  diskQuota?: number
  /** Files stored. */
  files: number
}

/** Options of `files.put`. */
export interface PutFileOptions {
  /** A name kept with the file (encrypted). */
  name?: string
  /** A content type kept with the file (encrypted). */
  contentType?: string
  /** How many nodes must hold the file (1, the default; more rejects with Unsupported for now). */
  replicas?: number
}

/** Options of `files.list`. */
export interface ListFilesOptions {
  /** List the files with ids after this one (a page's `next`); default: from the first. */
  cursor?: string | null
  /** Most files in the page (1..1000, default 100). */
  limit?: number
}

/**
 * Files: persistent, encrypted files on this node's disk, named by their content hash and
 * kept across restarts. Without a `dataDir` every call rejects with code Unsupported.
 */
export declare class Files {
  private constructor ()
  /**
   * Stores `source` (a file path, streamed from disk, or bytes) durably and resolves with
   * its id. Rejects with QuotaExceeded over the disk quota (leaving nothing behind).
   */
  put (source: TransferSource, options?: PutFileOptions): Promise<string>
  /** The contents of `id`, verified. Rejects with NotFound if it is not stored here. */
  get (id: string, options?: { into?: null }): Promise<Buffer>
  /** Writes the contents of `id`, verified, to the new file `into` (never replacing one). */
  get (id: string, options: { into: string }): Promise<void>
  /** What is known of `id`. */
  stat (id: string): Promise<FileInfo>
  /** One page of the stored files, in id order. */
  list (options?: ListFilesOptions): Promise<FilesPage>
  /** Deletes `id` from this node; rejects with NotFound if it is not stored here. */
  delete (id: string): Promise<void>
  /** Disk used, quota and file count. */
  stats (): FilesStats
  /**
   * Progress of the files this node moves across the network from now on (a put's
   * replicas sent, a replica pulled, a get fetched from another node): transfer progress
   * events whose `name` is the file id; the last one of each peer has `done === total`.
   */
  progress (): TransferEvents<TransferProgress>
}

/**
 * Collaborative text in a document: merged character by character (edit it with
 * `doc.spliceText`). A plain string is a scalar, replaced whole on every put.
 */
export declare class Text {
  constructor (value?: string)
  /** The characters. */
  readonly value: string
  /** Its length in characters. */
  readonly length: number
  toString (): string
  toJSON (): string
}

/** A counter in a document: concurrent increments add up (change it with `doc.increment`). */
export declare class Counter {
  constructor (value?: number | bigint)
  /** The value (a bigint beyond ±2^53). */
  readonly value: number | bigint
  valueOf (): number | bigint
  toJSON (): number | string
}

/**
 * A value in a document. Integer-valued numbers are stored as integers, others as floats;
 * integers beyond ±2^53 read back as bigints; bytes read back as Buffers.
 */
export type DocValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Text
  | Counter
  | DocValue[]
  | { [key: string]: DocValue }

/** A path into a document: `'items/0/title'` or `['items', 0, 'title']`. */
export type DocPath = string | Array<string | number>

/** Where a document may flow. */
export type Reach = 'private' | 'cluster' | 'community' | 'commons'

/** What is known of a document. */
export interface DocInfo {
  /** Its id (32 hex digits). */
  id: string
  /** Its reach. */
  reach: Reach
  /** Its heads (hex change hashes, sorted). */
  heads: string[]
}

/** What a node holds of documents (`docs.stats()`). */
export interface DocsStats {
  /** The documents held. */
  documents: number
  /** Their size in the Automerge format. */
  bytes: number
  /** Whether they are kept in the data dir (false: in memory only). */
  persistent: boolean
  /** Sync exchanges with peers under way. */
  syncing: number
}

/** A change event of `docs.changes()` / `doc.changes()`. */
export type DocChange =
  /**
   * `origin` is `'local'`, or the node id of the peer whose sync brought the change.
   * `paths` are the paths it touched, in the string form `doc.get` takes (a map key's
   * path for a put, delete or increment there, a list's or text's own path for anything
   * done to its elements or characters, never one inside another listed; sorted, at most
   * 256); `pathsTruncated` says more were touched than are listed.
   */
  | { type: 'Change', id: string, heads: string[], paths: string[], pathsTruncated: boolean, origin: string }
  /** Events dropped because this reader fell behind. */
  | { type: 'Lagged', missed: number }

/** Changes of documents from the moment the subscription was made; iteration ends at shutdown. */
export declare class DocChanges extends EventStream<DocChange> {
  private constructor ()
}

/** The sync state of one document with one peer (`docs.syncStatus()`). */
export interface PeerSync {
  /** The peer's node id. */
  peer: string
  /** Whether the peer's last known heads are this node's (nothing left to exchange). */
  inSync: boolean
  /** Whether an exchange with the peer is under way. */
  inFlight: boolean
  /** How many changes held here the peer's last known heads lack (0 when in sync). */
  behind: number
  /** When (unix ms) an exchange last left both sides at the same heads; `null` if never. */
  lastSynced: number | null
}

/** The sync state of one document on this node (`docs.syncStatus()`). */
export interface DocSync {
  /** Its id. */
  id: string
  /** Its reach. */
  reach: Reach
  /** Its heads (hex change hashes, sorted). */
  heads: string[]
  /** The peers it was exchanged with (since this node started, or before a restart with a data dir), by id. */
  peers: PeerSync[]
}

/**
 * Documents: Automerge CRDT documents kept in the data dir (encrypted) and synced with
 * peers as each one's reach allows. Without a `dataDir` they live in memory only.
 */
export declare class Docs {
  private constructor ()
  /** Creates an empty document of `reach` (default `'cluster'`); resolves with its id. */
  create (reach?: Reach): Promise<string>
  /** Imports Automerge bytes (`Automerge.save(doc)`) as a new document; resolves with its id. */
  import (data: Uint8Array | ArrayBuffer, reach?: Reach): Promise<string>
  /** The document `id`; rejects with NotFound if it is not on this node. */
  open (id: string): Promise<Doc>
  /** Every document on this node, in id order. */
  list (): Promise<DocInfo[]>
  /** What this node holds: documents, bytes, whether on disk, syncs under way. */
  stats (): Promise<DocsStats>
  /** The sync state of every document with the peers it was exchanged with, in id order. */
  syncStatus (): Promise<DocSync[]>
  /** Changes the reach of the document `id` (see `Doc.setReach`). */
  setReach (id: string, reach: Reach): Promise<void>
  /** Every change of every document on this node from now on. */
  changes (): DocChanges
  /** Deletes the document `id` from this node. */
  delete (id: string): Promise<void>
}

/**
 * One document. Edits resolve once durable and are offered to peers at once; reads are
 * synchronous. A bad path or the wrong type rejects with InvalidInput; nothing at the
 * path, NotFound.
 */
export declare class Doc {
  private constructor ()
  /** Its id (32 hex digits). */
  readonly id: string
  /** Its reach. */
  readonly reach: Reach
  /** The value at `path` (`null` if nothing is there; `''` is the whole document). */
  get (path?: DocPath): DocValue
  /** The whole document as JS values. */
  value (): { [key: string]: DocValue }
  /** The whole document as JSON text. */
  toJson (): string
  /** Its heads (hex change hashes, sorted). */
  heads (): string[]
  /** The whole document in the standard Automerge binary format. */
  save (): Buffer
  /** Sets the value at `path`. */
  put (path: DocPath, value: DocValue): Promise<void>
  /** Deletes the map key or list element at `path`. */
  delete (path: DocPath): Promise<void>
  /** Inserts `value` at `index` in the list at `path`. */
  insert (path: DocPath, index: number, value: DocValue): Promise<void>
  /** In the Text at `path`, deletes `del` characters at `pos` and inserts `text`. */
  spliceText (path: DocPath, pos: number, del: number, text?: string): Promise<void>
  /** Adds `by` (default 1) to the Counter at `path`. */
  increment (path: DocPath, by?: number): Promise<void>
  /** Merges Automerge bytes (a saved document or changes) into this document. */
  merge (data: Uint8Array | ArrayBuffer): Promise<void>
  /**
   * Changes its reach, durably; narrowing stops flows to the peers it excludes at once,
   * widening offers it to the peers it now reaches.
   */
  setReach (reach: Reach): Promise<void>
  /** Every change of this document from now on. */
  changes (): DocChanges
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
  /** The blocks API (throws code Closed when first read after shutdown). */
  readonly blocks: Blocks
  /** The transfer API (throws code Closed when first read after shutdown). */
  readonly transfer: Transfer
  /** The files API (throws code Closed when first read after shutdown). */
  readonly files: Files
  /** The documents API (throws code Closed when first read after shutdown). */
  readonly docs: Docs
  /**
   * The cache bucket `name`, created cluster-wide on first use; without options the
   * bucket's existing options (or the defaults) apply.
   */
  cache (name: string, options?: CacheOptions): Promise<Cache>
  /** The cache buckets this node knows, by name. */
  caches (): Record<string, BucketOptions>
  /** Closes connections, drops handlers, joins the node's threads. Idempotent. */
  shutdown (): Promise<void>
}
