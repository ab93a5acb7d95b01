// End-to-end tests of the Swift API: real nodes on 127.0.0.1 (mDNS off) talking over QUIC
// (channels, blocks, cache, transfer, files).
// Run with `swift test` after building the Rust library (see swift/README.md).
import Foundation
import XCTest

import Memmesh

/// A request handler implemented in Swift: answers "echo:" + the payload.
final class Echo: RequestHandler {
    func handle(request: Request) async throws -> Data {
        return Data("echo:".utf8) + request.data
    }
}

/// A request handler that throws a plain Swift error.
struct Boom: Error, CustomStringConvertible {
    var description: String { "boom from Swift" }
}

final class Throws: RequestHandler {
    func handle(request: Request) async throws -> Data {
        throw Boom()
    }
}

/// A request handler that throws a typed memmesh error (its kind reaches the requester).
final class ThrowsNotFound: RequestHandler {
    func handle(request: Request) async throws -> Data {
        throw MemmeshError.NotFound(message: "no such key")
    }
}

/// A request handler slower than the requester is willing to wait.
final class Slow: RequestHandler {
    func handle(request: Request) async throws -> Data {
        try await Task.sleep(nanoseconds: 10_000_000_000)
        return Data()
    }
}

/// A message handler that forwards every message to an AsyncStream.
final class Collect: MessageHandler {
    let continuation: AsyncStream<Message>.Continuation
    init(_ continuation: AsyncStream<Message>.Continuation) {
        self.continuation = continuation
    }
    func handle(message: Message) async throws {
        continuation.yield(message)
    }
}

/// An offer handler implemented in Swift with a fixed answer.
final class Decide: OfferHandler {
    let destination: Destination
    init(_ destination: Destination) {
        self.destination = destination
    }
    func decide(offer: Offer) async throws -> Destination {
        return destination
    }
}

/// An offer handler that throws: the offer is rejected with the error's text.
final class RefuseByThrowing: OfferHandler {
    func decide(offer: Offer) async throws -> Destination {
        throw Boom()
    }
}

final class MemmeshTests: XCTestCase {
    /// A test node: loopback, mDNS off, one worker thread.
    func startNode(
        _ name: String, secret: String? = nil, memoryQuota: UInt64 = 512 << 20,
        inboxDir: String? = nil, requestTimeoutMs: UInt64 = 30_000
    ) async throws -> Node {
        try await Node.start(config: NodeConfig(
            name: name,
            listen: "127.0.0.1:0",
            clusterSecret: secret,
            mdns: false,
            memoryQuota: memoryQuota,
            inboxDir: inboxDir,
            threads: 1,
            requestTimeoutMs: requestTimeoutMs
        ))
    }

    /// Polls `check` every 20 ms until it holds or 20 s pass; returns whether it held.
    func waitUntil(_ check: () -> Bool) async throws -> Bool {
        for _ in 0..<1000 {
            if check() { return true }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        return check()
    }

    /// Three nodes connected through the first, once each sees the other two alive.
    func startCluster() async throws -> [Node] {
        var nodes: [Node] = []
        for name in ["n0", "n1", "n2"] {
            nodes.append(try await startNode(name))
        }
        let members = nodes
        for node in members.dropFirst() {
            _ = try await node.connect(addr: members[0].addr())
        }
        let converged = try await waitUntil {
            members.allSatisfy { node in
                node.peers().filter { $0.state == .alive }.count == 2
            }
        }
        XCTAssertTrue(converged)
        return members
    }

    func testDefaultsMatchTheCore() {
        XCTAssertEqual(NodeConfig(), defaultNodeConfig())
    }

    func testStartConnectAndPeers() async throws {
        let a = try await startNode("a")
        let b = try await startNode("b")
        XCTAssertEqual(a.name(), "a")
        XCTAssertEqual(a.id().count, 52)
        XCTAssertNotEqual(a.id(), b.id())
        XCTAssertTrue(a.addr().hasPrefix("127.0.0.1:"))
        XCTAssertFalse(a.clusterTag().isEmpty)

        let peerId = try await a.connect(addr: b.addr())
        XCTAssertEqual(peerId, b.id())
        let peers = a.peers()
        XCTAssertEqual(peers.map(\.id), [b.id()])
        XCTAssertEqual(peers.first?.name, "b")
        XCTAssertEqual(peers.first?.state, .alive)
        XCTAssertEqual(peers.first?.connected, true)

        try await a.shutdown()
        try await b.shutdown()
        XCTAssertTrue(a.isClosed())
    }

    func testRequestWithASwiftHandler() async throws {
        let a = try await startNode("a")
        let b = try await startNode("b")
        _ = try await a.connect(addr: b.addr())
        try b.channel(name: "rpc").onRequest(handler: Echo())

        let ch = try a.channel(name: "rpc")
        let reply = try await ch.request(peer: b.id(), data: Data("hi".utf8))
        XCTAssertEqual(reply, Data("echo:hi".utf8))

        // Concurrent requests from Swift tasks.
        let replies = try await withThrowingTaskGroup(of: Data.self) { group in
            for i in 0..<10 {
                group.addTask { try await ch.request(peer: b.id(), data: Data("r\(i)".utf8)) }
            }
            var all: [Data] = []
            for try await r in group { all.append(r) }
            return all
        }
        XCTAssertEqual(Set(replies), Set((0..<10).map { Data("echo:r\($0)".utf8) }))

        try await a.shutdown()
        try await b.shutdown()
    }

    func testSendRecvAndBroadcast() async throws {
        let a = try await startNode("a")
        let b = try await startNode("b")
        _ = try await a.connect(addr: b.addr())
        let inbox = try b.channel(name: "chat")
        let out = try a.channel(name: "chat")

        let reached = try await out.send(data: Data("hello".utf8), to: [b.id()])
        XCTAssertEqual(reached, 1)
        let message = try await inbox.recv()
        XCTAssertEqual(message.from, a.id())
        XCTAssertEqual(message.data, Data("hello".utf8))

        let broadcastReached = try await out.broadcast(data: Data("all".utf8))
        XCTAssertEqual(broadcastReached, 1)
        let broadcast = try await inbox.recv()
        XCTAssertEqual(broadcast.data, Data("all".utf8))

        // A message handler implemented in Swift.
        var continuation: AsyncStream<Message>.Continuation!
        let stream = AsyncStream<Message> { continuation = $0 }
        inbox.onMessage(handler: Collect(continuation))
        _ = try await out.send(data: Data("to handler".utf8), to: nil)
        var iterator = stream.makeAsyncIterator()
        let handled = await iterator.next()
        XCTAssertEqual(handled?.data, Data("to handler".utf8))
        inbox.clearMessageHandler()

        try await a.shutdown()
        try await b.shutdown()
    }

    func testErrors() async throws {
        let a = try await startNode("a", secret: "one")
        let b = try await startNode("b", secret: "one")
        let stranger = try await startNode("stranger", secret: "two")
        _ = try await a.connect(addr: b.addr())
        let ch = try a.channel(name: "rpc")
        let served = try b.channel(name: "rpc")

        // No handler: NotFound.
        await assertThrows(try await ch.request(peer: b.id(), data: Data())) {
            if case .NotFound = $0 { return true } else { return false }
        }
        // A Swift error thrown by the handler: HandlerFailed with its description.
        served.onRequest(handler: Throws())
        await assertThrows(try await ch.request(peer: b.id(), data: Data())) {
            if case let .HandlerFailed(message) = $0 { return message.contains("boom from Swift") }
            return false
        }
        // A MemmeshError thrown by the handler keeps its kind.
        served.onRequest(handler: ThrowsNotFound())
        await assertThrows(try await ch.request(peer: b.id(), data: Data())) {
            if case let .NotFound(message) = $0 { return message.contains("no such key") }
            return false
        }
        // Too slow: Timeout.
        served.onRequest(handler: Slow())
        await assertThrows(try await ch.request(peer: b.id(), data: Data(), timeoutMs: 200)) {
            if case .Timeout = $0 { return true } else { return false }
        }
        served.clearRequestHandler()
        // Wrong cluster secret: Unauthorized.
        await assertThrows(try await a.connect(addr: stranger.addr())) {
            if case .Unauthorized = $0 { return true } else { return false }
        }
        // Bad input: InvalidInput.
        await assertThrows(try await ch.request(peer: "not-an-id", data: Data())) {
            if case .InvalidInput = $0 { return true } else { return false }
        }
        await assertThrows(try await a.connect(addr: "not an address")) {
            if case .InvalidInput = $0 { return true } else { return false }
        }
        // Closed node: Closed.
        try await a.shutdown()
        await assertThrows(try a.channel(name: "rpc")) {
            if case .Closed = $0 { return true } else { return false }
        }
        try await b.shutdown()
        try await stranger.shutdown()
    }

    func testBlocks() async throws {
        let nodes = try await startCluster()
        let (a, b, c) = (nodes[0], nodes[1], nodes[2])

        // Local by default; the id is the BLAKE3 content hash.
        let local = try await a.blocks().put(data: Data("hello".utf8))
        XCTAssertEqual(local, "blake3:ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f")
        let got = try await a.blocks().get(id: local)
        XCTAssertEqual(got, Data("hello".utf8))
        XCTAssertEqual(try a.blocks().localStats().blocks, 1)

        // Put into b's RAM, read from a third node, freed from there.
        let payload = Data(repeating: 7, count: 10_000)
        let lent = try await a.blocks().put(data: payload, placement: .peer(id: b.id()))
        XCTAssertEqual(try b.blocks().localStats().blocks, 1)
        let fromC = try await c.blocks().get(id: lent)
        XCTAssertEqual(fromC, payload)
        let stats = try await a.blocks().stats()
        XCTAssertEqual(stats.first?.id, a.id())
        XCTAssertEqual(stats.count, 3)
        try await c.blocks().free(id: lent)
        XCTAssertEqual(try b.blocks().localStats().blocks, 0)

        // Auto picks a peer; errors keep their kind.
        _ = try await a.blocks().put(data: Data("auto".utf8), placement: .auto)
        await assertThrows(try await a.blocks().get(id: lent)) {
            if case .NotFound = $0 { return true } else { return false }
        }
        await assertThrows(try await a.blocks().get(id: "not-a-block-id")) {
            if case .InvalidInput = $0 { return true } else { return false }
        }
        let tiny = try await startNode("tiny", memoryQuota: 256 * 1024)
        await assertThrows(try await tiny.blocks().put(data: Data(count: 300 * 1024))) {
            if case .QuotaExceeded = $0 { return true } else { return false }
        }

        for node in nodes + [tiny] { try await node.shutdown() }
    }

    func testCache() async throws {
        XCTAssertEqual(CacheOptions(), defaultCacheOptions())
        let nodes = try await startCluster()
        let (a, b, c) = (nodes[0], nodes[1], nodes[2])

        // A bucket with two replicas: written on a, read on b and c.
        let sessions = try await a.cache(name: "sessions", options: CacheOptions(replicas: 2))
        try await sessions.set(key: "user:1", value: Data("alice".utf8))
        let onB = try await b.cache(name: "sessions")
        let onC = try await c.cache(name: "sessions")
        XCTAssertEqual(onC.options().replicas, 2)
        XCTAssertEqual(c.caches().map(\.name), ["sessions"])
        let fromB = try await onB.get(key: "user:1")
        XCTAssertEqual(fromB, Data("alice".utf8))
        let missing = try await onC.get(key: "nobody")
        XCTAssertNil(missing)

        // Counters, batches, delete.
        let one = try await sessions.incr(key: "hits")
        XCTAssertEqual(one, 1)
        let six = try await onC.incr(key: "hits", by: 5)
        XCTAssertEqual(six, 6)
        try await onB.setMany(entries: [
            CacheEntry(key: "a", value: Data("1".utf8)),
            CacheEntry(key: "b", value: Data("2".utf8)),
        ])
        let values = try await onC.getMany(keys: ["a", "b", "c"])
        XCTAssertEqual(values, [Data("1".utf8), Data("2".utf8), nil])
        let count = try await sessions.len()
        XCTAssertEqual(count, 4)
        let deleted = try await onC.delete(key: "a")
        XCTAssertTrue(deleted)

        // TTL: expire, ttl, expiry.
        let noTtl = try await sessions.ttl(key: "user:1")
        XCTAssertNil(noTtl)
        let existed = try await sessions.expire(key: "user:1", ttlMs: 60_000)
        XCTAssertTrue(existed)
        let left = try await sessions.ttl(key: "user:1")
        XCTAssertNotNil(left)
        try await sessions.set(key: "short", value: Data("x".utf8), ttlMs: 100)
        try await Task.sleep(nanoseconds: 400_000_000)
        let expired = try await sessions.get(key: "short")
        XCTAssertNil(expired)
        await assertThrows(try await sessions.ttl(key: "short")) {
            if case .NotFound = $0 { return true } else { return false }
        }

        // LRU on one node: max_entries = 2.
        let single = try await startNode("single")
        let small = try await single.cache(name: "lru", options: CacheOptions(maxEntries: 2, replicas: 1))
        try await small.set(key: "a", value: Data("1".utf8))
        try await small.set(key: "b", value: Data("2".utf8))
        _ = try await small.get(key: "a")
        try await small.set(key: "c", value: Data("3".utf8))
        let evicted = try await small.get(key: "b")
        XCTAssertNil(evicted)
        XCTAssertEqual(small.stats().evicted, 1)
        XCTAssertEqual(small.name(), "lru")

        // The synchronous local read: one node owns every partition of its bucket.
        XCTAssertEqual(small.tryGetLocal(key: "c"), .hit(value: Data("3".utf8)))
        XCTAssertEqual(small.tryGetLocal(key: "b"), .miss)

        for node in nodes + [single] { try await node.shutdown() }
    }

    /// A fresh temporary directory.
    func makeTempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("memmesh-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The `*.memmesh-partial` files left under `dir`.
    func partials(in dir: URL) -> [String] {
        let all = FileManager.default.enumerator(atPath: dir.path)?.allObjects as? [String] ?? []
        return all.filter { $0.hasSuffix(".memmesh-partial") }
    }

    /// `count` bytes that differ from one chunk to the next.
    func payload(_ count: Int) -> Data {
        Data((0..<count).map { UInt8(truncatingIfNeeded: $0 % 251) })
    }

    func testTransferBytesToTwoPeers() async throws {
        let inbox = try makeTempDir()
        let a = try await startNode("a")
        let b = try await startNode("b", inboxDir: inbox.path)
        let c = try await startNode("c")
        _ = try await a.connect(addr: b.addr())
        _ = try await a.connect(addr: c.addr())
        let onC = try c.transfer()
        onC.onOffer(handler: Decide(.memory))
        let arrivals = try onC.received()

        // One result per peer, in order; b writes into its inbox, c takes it into memory.
        let data = payload(3 << 20)
        let results = try await a.transfer().send(source: .bytes(data: data), to: [b.id(), c.id()])
        XCTAssertEqual(results.map(\.peer), [b.id(), c.id()])
        for result in results {
            XCTAssertNil(result.error)
            XCTAssertEqual(result.bytes, UInt64(data.count))
            XCTAssertEqual(result.attempts, 1)
        }
        XCTAssertNotNil(results[0].hash)
        XCTAssertEqual(results[0].hash, results[1].hash)
        XCTAssertEqual(try Data(contentsOf: inbox.appendingPathComponent("data")), data)
        XCTAssertEqual(partials(in: inbox), [])
        let received = try await arrivals.next()
        XCTAssertEqual(received.data, data)
        XCTAssertNil(received.path)
        XCTAssertEqual(received.offer.from, a.id())
        XCTAssertEqual(received.hash, results[1].hash)

        for node in [a, b, c] { try await node.shutdown() }
    }

    func testTransferFilesAndOffers() async throws {
        let dir = try makeTempDir()
        let inbox = dir.appendingPathComponent("inbox")
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
        let a = try await startNode("a")
        let b = try await startNode("b", inboxDir: inbox.path)
        _ = try await a.connect(addr: b.addr())
        let sender = try a.transfer()
        let receiver = try b.transfer()

        // A file into the inbox, and an empty file.
        let file = dir.appendingPathComponent("report.bin")
        let data = payload((2 << 20) + 5)
        try data.write(to: file)
        let empty = dir.appendingPathComponent("empty")
        try Data().write(to: empty)
        let fileResults = try await sender.send(source: .path(path: file.path), to: [b.id()])
        XCTAssertNil(fileResults[0].error)
        XCTAssertEqual(try Data(contentsOf: inbox.appendingPathComponent("report.bin")), data)
        let emptyResults = try await sender.send(source: .path(path: empty.path), to: [b.id()])
        XCTAssertNil(emptyResults[0].error)
        XCTAssertEqual(emptyResults[0].bytes, 0)
        XCTAssertEqual(try Data(contentsOf: inbox.appendingPathComponent("empty")), Data())
        XCTAssertEqual(partials(in: dir), [])

        // A Swift handler chooses a path, or rejects (the sender sees Unauthorized).
        let chosen = dir.appendingPathComponent("chosen.bin")
        receiver.onOffer(handler: Decide(.path(path: chosen.path)))
        let toPath = try await sender.send(source: .bytes(data: Data("hi".utf8)), to: [b.id()])
        XCTAssertNil(toPath[0].error)
        XCTAssertEqual(try Data(contentsOf: chosen), Data("hi".utf8))
        receiver.onOffer(handler: Decide(.reject(reason: "not today")))
        let rejected = try await sender.send(source: .bytes(data: Data("hi".utf8)), to: [b.id()])
        if case let .Unauthorized(message)? = rejected[0].error {
            XCTAssertTrue(message.contains("not today"))
        } else {
            XCTFail("expected Unauthorized, got \(String(describing: rejected[0].error))")
        }
        XCTAssertNil(rejected[0].hash)
        receiver.onOffer(handler: RefuseByThrowing())
        let thrown = try await sender.send(source: .bytes(data: Data("hi".utf8)), to: [b.id()])
        if case let .Unauthorized(message)? = thrown[0].error {
            XCTAssertTrue(message.contains("boom from Swift"))
        } else {
            XCTFail("expected Unauthorized, got \(String(describing: thrown[0].error))")
        }
        receiver.clearOfferHandler()

        // A missing file fails for that peer; a malformed node id is thrown.
        let missing = try await sender.send(
            source: .path(path: dir.appendingPathComponent("missing").path), to: [b.id()])
        XCTAssertNotNil(missing[0].error)
        await assertThrows(try await sender.send(source: .bytes(data: Data()), to: ["not-an-id"])) {
            if case .InvalidInput = $0 { return true } else { return false }
        }
        XCTAssertFalse(try receiver.cancel(offerId: "blake3:" + String(repeating: "00", count: 32)))

        try await a.shutdown()
        try await b.shutdown()
    }

    /// A node with a data dir (and optionally a disk quota or a storage passphrase).
    func startStoringNode(
        _ name: String, dataDir: String?, diskQuota: UInt64? = nil, passphrase: String? = nil
    ) async throws -> Node {
        try await Node.start(config: NodeConfig(
            name: name,
            listen: "127.0.0.1:0",
            mdns: false,
            dataDir: dataDir,
            diskQuota: diskQuota,
            storagePassphrase: passphrase,
            threads: 1
        ))
    }

    func testFiles() async throws {
        let dir = try makeTempDir()
        let dataDir = dir.appendingPathComponent("data").path
        let node = try await startStoringNode("f", dataDir: dataDir, passphrase: "correct horse")
        let files = try node.files()

        // Bytes and a path round trip; the id is the BLAKE3 content hash.
        let id = try await files.put(
            source: .bytes(data: Data("hello".utf8)), options: PutOptions(name: "hello.txt"))
        XCTAssertEqual(id, "blake3:ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f")
        let hello = try await files.get(id: id)
        XCTAssertEqual(hello, Data("hello".utf8))
        let source = dir.appendingPathComponent("source.bin")
        let data = payload(200_000)
        try data.write(to: source)
        let fromPath = try await files.put(source: .path(path: source.path))
        let out = dir.appendingPathComponent("out.bin")
        try await files.getToPath(id: fromPath, path: out.path)
        XCTAssertEqual(try Data(contentsOf: out), data)

        // Stat, list pages, stats, delete.
        let info = try await files.stat(id: id)
        XCTAssertEqual(info.size, 5)
        XCTAssertEqual(info.name, "hello.txt")
        XCTAssertEqual(info.holders, [node.id()])
        let first = try await files.list(cursor: nil, limit: 1)
        XCTAssertEqual(first.files.count, 1)
        XCTAssertNotNil(first.next)
        let second = try await files.list(cursor: first.next, limit: 1)
        XCTAssertEqual(second.files.count, 1)
        XCTAssertNil(second.next)
        XCTAssertEqual(try files.stats().files, 2)
        try await files.delete(id: fromPath)
        await assertThrows(try await files.get(id: fromPath)) {
            if case .NotFound = $0 { return true } else { return false }
        }
        await assertThrows(try await files.put(
            source: .bytes(data: Data("x".utf8)), options: PutOptions(replicas: 2))) {
            if case .Unsupported = $0 { return true } else { return false }
        }
        try await node.shutdown()

        // A restart keeps the file; a wrong passphrase is Unauthorized.
        await assertThrows(try await self.startStoringNode("f", dataDir: dataDir, passphrase: "wrong")) {
            if case .Unauthorized = $0 { return true } else { return false }
        }
        let again = try await startStoringNode("f", dataDir: dataDir, passphrase: "correct horse")
        let kept = try await again.files().get(id: id)
        XCTAssertEqual(kept, Data("hello".utf8))
        try await again.shutdown()

        // A disk quota, and a node without a data dir.
        let small = try await startStoringNode(
            "q", dataDir: dir.appendingPathComponent("small").path, diskQuota: 4096)
        await assertThrows(try await small.files().put(source: .bytes(data: Data(count: 8192)))) {
            if case .QuotaExceeded = $0 { return true } else { return false }
        }
        try await small.shutdown()
        let ephemeral = try await startStoringNode("e", dataDir: nil)
        await assertThrows(try await ephemeral.files().put(source: .bytes(data: Data()))) {
            if case .Unsupported = $0 { return true } else { return false }
        }
        try await ephemeral.shutdown()
    }

    func testPublishAndFetch() async throws {
        let dir = try makeTempDir()
        let a = try await startNode("a")
        let b = try await startNode("b")
        _ = try await a.connect(addr: b.addr())
        let file = dir.appendingPathComponent("published.bin")
        let data = payload((1 << 20) + 77)
        try data.write(to: file)

        let id = try await a.transfer().publish(source: .path(path: file.path))
        XCTAssertTrue(id.hasPrefix("blake3:"))
        let copy = dir.appendingPathComponent("copy.bin")
        let fetching = try b.transfer().progress()
        let intoFile = try await b.transfer().fetch(id: id, from: a.id(), into: copy.path)
        XCTAssertEqual(intoFile.hash, id)
        XCTAssertEqual(intoFile.path, copy.path)
        XCTAssertEqual(try Data(contentsOf: copy), data)
        // The fetching node reports receiving it from the publisher, up to the total.
        var fetched = try await fetching.next()
        while fetched.done < fetched.total {
            XCTAssertEqual(fetched.direction, .receive)
            fetched = try await fetching.next()
        }
        XCTAssertEqual(fetched.direction, .receive)
        XCTAssertEqual(fetched.peer, a.id())
        XCTAssertEqual(fetched.name, "published.bin")
        XCTAssertEqual(fetched.total, UInt64(data.count))
        let intoMemory = try await b.transfer().fetch(id: id, from: a.id())
        XCTAssertEqual(intoMemory.data, data)

        // Blocks are fetchable by their id; unknown ids are NotFound.
        let block = try await a.blocks().put(data: Data("a block".utf8))
        let fetchedBlock = try await b.transfer().fetch(id: block, from: a.id())
        XCTAssertEqual(fetchedBlock.data, Data("a block".utf8))
        XCTAssertTrue(try a.transfer().unpublish(id: id))
        await assertThrows(try await b.transfer().fetch(id: id, from: a.id())) {
            if case .NotFound = $0 { return true } else { return false }
        }
        await assertThrows(try await b.transfer().fetch(id: "not-an-id", from: a.id())) {
            if case .InvalidInput = $0 { return true } else { return false }
        }

        try await a.shutdown()
        try await b.shutdown()
    }

    func testTransferProgressAndShutdown() async throws {
        let inbox = try makeTempDir()
        let a = try await startNode("a")
        let b = try await startNode("b", inboxDir: inbox.path)
        _ = try await a.connect(addr: b.addr())
        let progress = try a.transfer().progress()
        let receiving = try b.transfer().progress()
        let data = payload(4 << 20)
        let results = try await a.transfer().send(source: .bytes(data: data), to: [b.id()])
        XCTAssertNil(results[0].error)

        // Progress reports end at the total, on the sending side...
        var last = try await progress.next()
        while last.done < last.total {
            XCTAssertEqual(last.direction, .send)
            last = try await progress.next()
        }
        XCTAssertEqual(last.direction, .send)
        XCTAssertEqual(last.peer, b.id())
        XCTAssertEqual(last.done, UInt64(data.count))
        XCTAssertEqual(last.total, UInt64(data.count))
        // ...and on the receiving side, naming the sender.
        var got = try await receiving.next()
        while got.done < got.total {
            XCTAssertEqual(got.direction, .receive)
            got = try await receiving.next()
        }
        XCTAssertEqual(got.direction, .receive)
        XCTAssertEqual(got.peer, a.id())
        XCTAssertEqual(got.total, UInt64(data.count))

        // The streams end with Closed at shutdown.
        let received = try b.transfer().received()
        try await b.shutdown()
        await assertThrows(try await received.next()) {
            if case .Closed = $0 { return true } else { return false }
        }
        try await a.shutdown()
    }

    /// Asserts that `body` throws a MemmeshError for which `matches` holds.
    func assertThrows<T>(
        _ body: @autoclosure () async throws -> T,
        file: StaticString = #filePath, line: UInt = #line,
        _ matches: (MemmeshError) -> Bool
    ) async {
        do {
            _ = try await body()
            XCTFail("expected a MemmeshError", file: file, line: line)
        } catch let error as MemmeshError {
            XCTAssertTrue(matches(error), "unexpected \(error)", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }
}
