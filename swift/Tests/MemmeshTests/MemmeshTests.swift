// End-to-end tests of the Swift API: real nodes on 127.0.0.1 (mDNS off) talking over QUIC.
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

final class MemmeshTests: XCTestCase {
    /// A test node: loopback, mDNS off, one worker thread.
    func startNode(
        _ name: String, secret: String? = nil, memoryQuota: UInt64 = 512 << 20,
        requestTimeoutMs: UInt64 = 30_000
    ) async throws -> Node {
        try await Node.start(config: NodeConfig(
            name: name,
            listen: "127.0.0.1:0",
            clusterSecret: secret,
            mdns: false,
            memoryQuota: memoryQuota,
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

        for node in nodes + [single] { try await node.shutdown() }
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
