// Checking uploads with the Swift package: the flow an app drives over the
// core, in both modes, and what to do with a refused table.
//
// WRITTEN, NOT COMPILED: no Swift toolchain exists where this project is
// built and tested (bindings/swift/README.md). Every call below is checked
// by name and labels against the generated Sources/Blindmatch/Blindmatch.swift
// (bindings/swift/check-example.py, run by bindings/generate.sh --check);
// the same flow runs, compiled and against a real server, in Kotlin
// (bindings/kotlin) and Python (bindings/python/examples).
//
// The app brings its gRPC stack (grpc-swift, with stubs generated from
// proto/proto/blindmatch/v1/blindmatch.proto); `Transport` is where it
// plugs in.
import Foundation
import Blindmatch

/// What the app's gRPC client does: the three calls, deadlines and retries
/// (`Backoff` says how long to wait) included.
protocol Transport {
    /// `GetManifest`: the response's `statement`, `signature` and
    /// `max_batch` fields (the rest are unsigned copies of the statement's).
    func getManifest(logSize: UInt64) async throws -> (statement: Data, signature: Data, maxBatch: Int)
    /// `DownloadTable` from `offset`: each chunk's `offset`, `slots`, `proof`.
    func downloadTable(tableId: Data, offset: UInt64) -> AsyncThrowingStream<(UInt64, Data, [Data]), Error>
    /// `Submit`, the same request on every retry; returns `accepted`.
    func submit(tableId: Data, vouchers: [Data], submissionId: Data, accountId: Data) async throws -> UInt32
}

final class Checker {
    let transport: Transport
    let history: History
    private(set) var table: Table?
    private(set) var manifest: Manifest?
    private var maxBatch = 64

    /// `saved`: the history the app persisted (empty bytes the first time).
    init(transport: Transport, operatorKeyHex: String, saved: Data) throws {
        self.transport = transport
        history = try History.restore(operator: try OperatorKey.fromHex(hex: operatorKeyHex), saved: saved)
    }

    /// Verifies the manifest and brings the table up to its version. A
    /// refused table is never used: the one held stays, the app is told,
    /// and the next refresh tries again (bindings/ERRORS.md).
    func refresh() async throws {
        let response = try await transport.getManifest(logSize: history.logSize())
        let offered: Manifest
        let accepted: Accepted
        do {
            offered = try Manifest.verify(statement: response.statement, signature: response.signature,
                                          operator: history.operator())
            accepted = try history.check(manifest: offered)
        } catch BlindmatchError.BadSignature(let reason) {
            throw Refused.table("not signed by the pinned operator key: \(reason)")
        } catch BlindmatchError.Rollback(let reason, _, _), BlindmatchError.Equivocation(let reason, _, _, _) {
            throw Refused.table(reason)
        }
        if let held = manifest, held.tableId() == offered.tableId() { return }
        let download = TableDownload(manifest: offered)
        for try await (offset, slots, proof) in transport.downloadTable(tableId: offered.tableId(),
                                                                       offset: try download.offset()) {
            try download.push(offset: offset, slots: slots, proof: proof)
        }
        table = try download.finish()
        history.record(accepted: accepted)
        // Persist history.encode() here, with the table's encode().
        manifest = offered
        maxBatch = max(1, response.maxBatch)
    }

    /// Version 1: returns how many vouchers were acknowledged (nothing
    /// about matches).
    func check(_ items: [ItemToCheck]) async throws -> UInt32 {
        guard let table else { throw Refused.noTable }
        var acknowledged: UInt32 = 0
        for start in stride(from: 0, to: items.count, by: maxBatch) {
            let batch = Array(items[start..<min(start + maxBatch, items.count)])
            let submission = try table.submission(items: batch)
            acknowledged += try await transport.submit(tableId: submission.tableId, vouchers: submission.vouchers,
                                                       submissionId: submission.id, accountId: submission.accountId)
        }
        return acknowledged
    }

    /// Threshold mode: uploads under an account; each keeps its voucher id
    /// across retries and restarts, so it counts once.
    func checkAccount(_ account: Account, _ uploads: [Upload]) async throws -> UInt32 {
        guard let table else { throw Refused.noTable }
        var acknowledged: UInt32 = 0
        for start in stride(from: 0, to: uploads.count, by: maxBatch) {
            let batch = Array(uploads[start..<min(start + maxBatch, uploads.count)])
            let submission = try table.accountSubmission(account: account, uploads: batch)
            acknowledged += try await transport.submit(tableId: submission.tableId, vouchers: submission.vouchers,
                                                       submissionId: submission.id, accountId: submission.accountId)
        }
        return acknowledged
    }
}

enum Refused: Error {
    case table(String)
    case noTable
}

/// A new account's secret, its synthetic rate at most s / 2N (README,
/// "Choosing the synthetic rate"): N the most uploads the account sends
/// under one threshold. Keep `encode()` in the Keychain, the same on each
/// of the account's devices; restore it with `Account.decode(saved:)`.
func newAccount(id: Data, manifest: Manifest, maxUploads: Int) throws -> Account {
    guard let s = manifest.syntheticBound() else { throw Refused.table("the table is in version 1") }
    return try Account.generate(accountId: id, syntheticRate: min(1.0, Double(s) / Double(2 * maxUploads)))
}

/// One upload: `voucherId` is the app's 16-byte name for it (from its own
/// id for the upload, a message id), the same on every retry.
func upload(voucherId: Data, sha256Hex: String, note: String) throws -> Upload {
    Upload(voucherId: voucherId, itemType: .sha256, value: try itemFromHex(itemType: .sha256, hex: sha256Hex),
           associatedData: Data(note.utf8))
}
