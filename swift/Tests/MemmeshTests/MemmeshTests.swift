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
    func startNode(_ name: String, secret: String? = nil, requestTimeoutMs: UInt64 = 30_000) async throws -> Node {
        try await Node.start(config: NodeConfig(
            name: name,
            listen: "127.0.0.1:0",
            clusterSecret: secret,
            mdns: false,
            threads: 1,
            requestTimeoutMs: requestTimeoutMs
        ))
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
